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


def blur_control(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> blurred control video [T,H,W,3] float32 in [0,1]."""
    blur = BLUR_PRESETS[preset]
    t, h, w, _ = rgb.shape
    small_size = (max(w // DOWNSCALE, 1), max(h // DOWNSCALE, 1))
    scale = w / REFERENCE_WIDTH / DOWNSCALE
    diameter = max(round(blur.diameter * scale), 1)
    out = np.empty((t, h, w, 3), dtype=np.float32)

    def blur_frame(i: int) -> None:
        small = cv2.resize(rgb[i], small_size, interpolation=cv2.INTER_AREA)
        # Filtering in float at the small size lets the upscale write the output
        # directly, with no full-size uint8 picture to convert.
        small = small.astype(np.float32) * np.float32(1 / 255)
        small = cv2.bilateralFilter(
            small, diameter, blur.sigma_color / 255, blur.sigma_space * scale
        )
        cv2.resize(small, (w, h), dst=out[i], interpolation=cv2.INTER_LINEAR)

    for_each_frame(blur_frame, t)
    return out
