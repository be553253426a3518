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


def neighbours_differ(
    a: np.ndarray, test: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Mark pixels whose right or lower neighbour differs by ``test``: [T,H,W(,C)] -> [T,H,W]."""
    out = np.zeros(a.shape[:3], dtype=bool)

    def compare(t: int) -> None:
        frame = a[t]
        out[t, :, :-1] |= test(frame[:, :-1], frame[:, 1:])
        out[t, :-1, :] |= test(frame[:-1, :], frame[1:, :])

    for_each_frame(compare, len(a))
    return out


def depth_edges(depth: np.ndarray) -> np.ndarray:
    """Depth discontinuities [T,H,W] bool between surfaces that were hit, and the hit
    pixels on the border of the hit region.

    Inverse depth is linear across the image on any plane, so its second difference
    is zero on a floor seen at a grazing angle and large only where surfaces break:
    a hit pixel is an edge where that second difference (along x or y) exceeds
    DEPTH_JUMP of its own inverse depth. Invalid depth (0, inf, NaN: no hit) counts as
    inverse 0, so a hit next to the sky stands out, and is never an edge itself: empty
    background stays black.
    """
    out = np.zeros(depth.shape, dtype=bool)
    k = np.float32(DEPTH_JUMP)

    def frame_edges(t: int) -> None:
        inv = _inverse_depth(depth[t])
        threshold = k * inv
        hit = inv > 0
        for o, (before, here, after), limit, valid in (
            (
                out[t, :, 1:-1],
                (inv[:, :-2], inv[:, 1:-1], inv[:, 2:]),
                threshold[:, 1:-1],
                hit[:, 1:-1],
            ),
            (
                out[t, 1:-1, :],
                (inv[:-2, :], inv[1:-1, :], inv[2:, :]),
                threshold[1:-1, :],
                hit[1:-1, :],
            ),
        ):
            # |before - 2 here + after|, in OpenCV for speed on 2D views.
            curvature = cv2.absdiff(cv2.add(before, after), cv2.add(here, here))
            o |= (curvature > limit) & valid

    for_each_frame(frame_edges, len(depth))
    return out


def _inverse_depth(depth: np.ndarray) -> np.ndarray:
    """1 / depth [H,W] float32, 0 where depth is invalid (0, negative, inf or NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.divide(np.float32(1.0), depth, dtype=np.float32)
    inv[~(np.isfinite(inv) & (inv > 0))] = 0.0
    return inv


def normal_edges(normals: np.ndarray) -> np.ndarray:
    """Creases where unit normals [T,H,W,3(+1)] turn sharply, [T,H,W] bool.

    Only between two pixels that both have a normal: where nothing was hit the
    normals annotator writes zeros, which would otherwise turn every pixel of the
    background into a crease.
    """
    vectors = normals[..., :3]

    def crease(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cos = np.einsum("...c,...c->...", a, b)
        both = (np.einsum("...c,...c->...", a, a) > 0.25) & (
            np.einsum("...c,...c->...", b, b) > 0.25
        )
        return both & (cos < NORMAL_CREASE_COS)

    return neighbours_differ(vectors, crease)


def segment_edges(ids: np.ndarray) -> np.ndarray:
    """Boundaries between segments [T,H,W] bool."""
    return neighbours_differ(ids, np.not_equal)


def edge_control(edges: np.ndarray) -> np.ndarray:
    """Edges [T,H,W] bool -> control video [T,H,W,3] float32, white on black (read-only view)."""
    grey = np.empty(edges.shape, dtype=np.float32)
    for_each_frame(lambda t: np.copyto(grey[t], edges[t]), len(edges))
    return grey_video(grey)
