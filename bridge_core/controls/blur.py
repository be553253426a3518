"""Blur (Cosmos-Transfer1 "vis") control: bilateral blur with a down/up resize of the RGB."""

from __future__ import annotations

import cv2
import numpy as np

from bridge_core.controls.presets import BLUR_PRESETS
from bridge_core.parallel import for_each_frame

# The blur runs at 1/4 resolution with the preset's diameter and spatial sigma
# scaled to match: the same spatial extent as at full size, about 16x faster, and
# the resize itself removes the fine detail the model should invent.
DOWNSCALE = 4
# The presets are pixel sizes for the reference models' 1280-wide input; other
# widths scale them, so a preset blurs the same share of the picture at any size.
REFERENCE_WIDTH = 1280


def blurred_small(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> the blur at the size it is computed, [T,H/4,W/4,3] float32 in [0,1].

    Everything finer than this size is gone, so comparisons of blurred pictures (Blur
    SSIM) can be made here at a sixteenth of the cost.
    """
    blur = BLUR_PRESETS[preset]
    t, h, w, _ = rgb.shape
    small_w, small_h = max(w // DOWNSCALE, 1), max(h // DOWNSCALE, 1)
    scale = w / REFERENCE_WIDTH / DOWNSCALE
    diameter = max(round(blur.diameter * scale), 1)
    out = np.empty((t, small_h, small_w, 3), dtype=np.float32)

    def blur_frame(i: int) -> None:
        small = cv2.resize(rgb[i], (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32) * np.float32(1 / 255)
        out[i] = cv2.bilateralFilter(
            small, diameter, blur.sigma_color / 255, blur.sigma_space * scale
        )

    for_each_frame(blur_frame, t)
    return out


def blur_control(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> blurred control video [T,H,W,3] float32 in [0,1]."""
    return upscaled(blurred_small(rgb, preset), rgb.shape[1:3])


def upscaled(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[T,h,w,3] float32 -> [T,H,W,3] float32 at ``size`` (H, W), bilinear."""
    h, w = size
    out = np.empty((len(small), h, w, 3), dtype=np.float32)

    def upscale(i: int) -> None:
        # Upscaling straight into the output: no full-size intermediate to convert.
        cv2.resize(small[i], (w, h), dst=out[i], interpolation=cv2.INTER_LINEAR)

    for_each_frame(upscale, len(small))
    return out
