"""Blur (Cosmos-Transfer1 "vis") control: bilateral blur with a down/up resize of the RGB."""

from __future__ import annotations

import cv2
import numpy as np

from bridge_core.controls.presets import BLUR_PRESETS

# The blur runs at 1/4 resolution with the preset's diameter and spatial sigma
# scaled to match: the same spatial extent as at full size, about 16x faster, and
# the resize itself removes the fine detail the model should invent.
DOWNSCALE = 4


def blur_control(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> blurred control video [T,H,W,3] float32 in [0,1]."""
    blur = BLUR_PRESETS[preset]
    t, h, w, _ = rgb.shape
    small_size = (max(w // DOWNSCALE, 1), max(h // DOWNSCALE, 1))
    out = np.empty((t, h, w, 3), dtype=np.float32)
    for i, frame in enumerate(rgb):
        small = cv2.resize(frame, small_size, interpolation=cv2.INTER_AREA)
        small = cv2.bilateralFilter(
            small,
            max(blur.diameter // DOWNSCALE, 1),
            blur.sigma_color,
            blur.sigma_space / DOWNSCALE,
        )
        up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        np.multiply(up, np.float32(1 / 255), out=out[i])
    return out
