"""Edge control: Canny over RGB, optionally merged with edges from geometry.

Simulator renders have flat materials, so RGB Canny misses object outlines where
two surfaces share a colour (users call the results "CAD-looking"). Depth and
normal discontinuities and segment boundaries are where geometry really changes.
"""

from __future__ import annotations

import cv2
import numpy as np

from bridge_core.controls.depth import grey_video
from bridge_core.controls.presets import EDGE_PRESETS

# A neighbour this much farther (relative) is across a depth edge.
DEPTH_JUMP = 0.04
# Normals turning by more than this angle (cos of 35 degrees) make a crease.
NORMAL_CREASE_COS = float(np.cos(np.radians(35)))


def canny_edges(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> edges [T,H,W] bool, with the preset's Canny thresholds."""
    thresholds = EDGE_PRESETS[preset]
    return np.stack(
        [
            cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), thresholds.low, thresholds.high) > 0
            for frame in rgb
        ]
    )


def _differs(a: np.ndarray, test) -> np.ndarray:
    """Mark pixels whose right or lower neighbour differs by ``test`` ([...,H,W] bool)."""
    out = np.zeros(a.shape[:3], dtype=bool)
    out[:, :, :-1] |= test(a[:, :, :-1], a[:, :, 1:])
    out[:, :-1, :] |= test(a[:, :-1, :], a[:, 1:, :])
    return out


def depth_edges(depth: np.ndarray) -> np.ndarray:
    """Depth discontinuities [T,H,W] bool; hit/no-hit borders count as edges.

    Invalid depth is inf, so |inf - d| > k*d marks the border of a hit for free,
    and two invalid neighbours give NaN, which compares False.
    """
    out = np.zeros(depth.shape, dtype=bool)
    k = np.float32(DEPTH_JUMP)
    with np.errstate(invalid="ignore"):
        for t, frame in enumerate(depth):
            # OpenCV's absdiff/min run several times faster than numpy on 2D views.
            for a, b, o in (
                (frame[:, :-1], frame[:, 1:], out[t, :, :-1]),
                (frame[:-1, :], frame[1:, :], out[t, :-1, :]),
            ):
                o |= cv2.absdiff(a, b) > k * cv2.min(a, b)
    return out


def normal_edges(normals: np.ndarray) -> np.ndarray:
    """Creases where unit normals [T,H,W,3] turn sharply, [T,H,W] bool."""
    return _differs(normals, lambda a, b: np.einsum("...c,...c->...", a, b) < NORMAL_CREASE_COS)


def segment_edges(ids: np.ndarray) -> np.ndarray:
    """Boundaries between segments [T,H,W] bool."""
    return _differs(ids, np.not_equal)


def edge_control(edges: np.ndarray) -> np.ndarray:
    """Edges [T,H,W] bool -> control video [T,H,W,3] float32, white on black (read-only view)."""
    return grey_video(edges.astype(np.float32))
