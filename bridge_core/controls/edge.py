"""Edge control: Canny over RGB, optionally merged with edges from geometry.

Simulator renders have flat materials, so RGB Canny misses object outlines where
two surfaces share a colour (users call the results "CAD-looking"). Depth and
normal discontinuities and segment boundaries are where geometry really changes.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from bridge_core.controls.depth import grey_video
from bridge_core.controls.presets import EDGE_PRESETS
from bridge_core.parallel import for_each_frame

# Inverse depth bending by more than this share of itself marks a depth edge.
DEPTH_JUMP = 0.04
# Normals turning by more than this angle (cos of 35 degrees) make a crease.
NORMAL_CREASE_COS = float(np.cos(np.radians(35)))


def canny_edges(rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """RGB [T,H,W,3] uint8 -> edges [T,H,W] bool, with the preset's Canny thresholds."""
    thresholds = EDGE_PRESETS[preset]
    out = np.empty(rgb.shape[:3], dtype=bool)

    def canny(t: int) -> None:
        grey = cv2.cvtColor(rgb[t], cv2.COLOR_RGB2GRAY)
        np.greater(cv2.Canny(grey, thresholds.low, thresholds.high), 0, out=out[t])

    for_each_frame(canny, len(rgb))
    return out


def _differs(a: np.ndarray, test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Mark pixels whose right or lower neighbour differs by ``test``: [T,H,W(,C)] -> [T,H,W]."""
    out = np.zeros(a.shape[:3], dtype=bool)

    def compare(t: int) -> None:
        frame = a[t]
        out[t, :, :-1] |= test(frame[:, :-1], frame[:, 1:])
        out[t, :-1, :] |= test(frame[:-1, :], frame[1:, :])

    for_each_frame(compare, len(a))
    return out


def depth_edges(depth: np.ndarray) -> np.ndarray:
    """Depth discontinuities [T,H,W] bool; hit/no-hit borders count as edges.

    Inverse depth is linear across the image on any plane, so its second difference
    is zero on a floor seen at a grazing angle and large only where surfaces break:
    a pixel is an edge where that second difference (along x or y) exceeds
    DEPTH_JUMP of its own inverse depth. Invalid depth (inf) has inverse 0, so the
    border of a hit stands out and empty sky stays quiet.
    """
    out = np.zeros(depth.shape, dtype=bool)
    k = np.float32(DEPTH_JUMP)

    def frame_edges(t: int) -> None:
        with np.errstate(divide="ignore"):
            inv = np.divide(np.float32(1.0), depth[t])
        threshold = k * inv
        for o, (before, here, after), limit in (
            (out[t, :, 1:-1], (inv[:, :-2], inv[:, 1:-1], inv[:, 2:]), threshold[:, 1:-1]),
            (out[t, 1:-1, :], (inv[:-2, :], inv[1:-1, :], inv[2:, :]), threshold[1:-1, :]),
        ):
            # |before - 2 here + after|, in OpenCV for speed on 2D views.
            curvature = cv2.absdiff(cv2.add(before, after), cv2.add(here, here))
            o |= curvature > limit

    for_each_frame(frame_edges, len(depth))
    return out


def normal_edges(normals: np.ndarray) -> np.ndarray:
    """Creases where unit normals [T,H,W,3] turn sharply, [T,H,W] bool."""
    return _differs(normals, lambda a, b: np.einsum("...c,...c->...", a, b) < NORMAL_CREASE_COS)


def segment_edges(ids: np.ndarray) -> np.ndarray:
    """Boundaries between segments [T,H,W] bool."""
    return _differs(ids, np.not_equal)


def edge_control(edges: np.ndarray) -> np.ndarray:
    """Edges [T,H,W] bool -> control video [T,H,W,3] float32, white on black (read-only view)."""
    grey = np.empty(edges.shape, dtype=np.float32)
    for_each_frame(lambda t: np.copyto(grey[t], edges[t]), len(edges))
    return grey_video(grey)
