"""The gate's own checks, beside the run's Edge F1 and Blur SSIM (bridge_core/run/metrics.py).

Small pure functions over arrays the metrics already made (the output's Canny edges, the
blurred frames), so a clip's checks cost a few percent of what the bridge spends on it:

- label validity: are the output's edges where the segmentation says large objects end?
  A generated clip whose objects moved or melted no longer matches its labels.
- temporal stability: does the output change from frame to frame as much as the input
  does, or flicker?
"""

from __future__ import annotations

import cv2
import numpy as np

from bridge_core.controls.edge import neighbours_differ
from bridge_core.parallel import for_each_frame

# Segments covering at least this share of a clip's pixels count as large objects: small
# ones (a screw, a far label) a toy model cannot draw, and a real one may blur.
LARGE_SEGMENT_SHARE = 0.01
# Output edges count as on a boundary within this share of the picture's short side
# (2 px at 128, 7 px at 704): generated edges are rarely on the exact pixel.
BOUNDARY_TOLERANCE = 0.015
# Frame-to-frame change below this (mean absolute difference, values in [0, 1]) is noise
# of the codec: added to both sides so a still camera does not divide by almost zero.
CHANGE_FLOOR = 2 / 255


def object_boundaries(ids: np.ndarray, min_share: float = LARGE_SEGMENT_SHARE) -> np.ndarray:
    """Boundaries of large segments, [T,H,W] int ids -> [T,H,W] bool.

    A segment is large where it covers ``min_share`` of the clip's pixels; only
    boundaries between two large segments count (a screw on a shelf is not a label a
    generated clip must keep).
    """
    if ids.min() >= 0 and ids.max() < 2**20:  # semantic ids: counted without sorting
        counts = np.bincount(ids.ravel())
        large = np.flatnonzero(counts >= min_share * ids.size)
    else:
        values, counts = np.unique(ids, return_counts=True)
        large = values[counts >= min_share * ids.size]
    out = np.empty(ids.shape, dtype=bool)

    def frame(t: int) -> None:
        merged = np.where(np.isin(ids[t], large), ids[t].astype(np.int64), -1)
        out[t] = neighbours_differ(merged[None], _between_large)[0]

    for_each_frame(frame, len(ids))
    return out


def _between_large(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b) & (a >= 0) & (b >= 0)


def boundary_band(boundaries: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> np.ndarray:
    """Pixels near a boundary, [T,H,W] bool -> [T,H,W] bool (dilated by ``tolerance`` of
    the short side, at least 1 px)."""
    radius = max(round(tolerance * min(boundaries.shape[1:])), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = np.empty(boundaries.shape, dtype=bool)

    def frame(t: int) -> None:
        np.greater(cv2.dilate(boundaries[t].view(np.uint8), kernel), 0, out=out[t])

    for_each_frame(frame, len(boundaries))
    return out


def label_agreement(edges: np.ndarray, band: np.ndarray) -> float | None:
    """How much likelier an output edge pixel is near a boundary than anywhere: the lift
    P(near | edge) / P(near), edges and band [T,H,W] bool.

    1 means the edges ignore the labels (noise, another scene); higher, they follow them.
    None where there is no boundary to agree with; 0 where the output has no edges.
    """
    near = np.count_nonzero(band)
    if near == 0 or near == band.size:
        return None
    count = np.count_nonzero(edges)
    if count == 0:
        return 0.0
    on_band = np.count_nonzero(edges & band)
    return (on_band / count) / (near / band.size)


def frame_change(frames: np.ndarray) -> float | None:
    """Mean absolute change between consecutive frames, [T,H,W,C] float in [0,1] -> a
    value in [0,1]; None for a single frame."""
    if len(frames) < 2:
        return None
    return float(np.mean(np.abs(np.diff(frames, axis=0)), dtype=np.float64))


def temporal_ratio(
    change_out: float | None, change_in: float | None, floor: float = CHANGE_FLOOR
) -> float | None:
    """The output's frame-to-frame change over the input's (:func:`frame_change` of each),
    both raised by ``floor``: about 1 for a stable clip, far above for one that flickers."""
    if change_out is None or change_in is None:
        return None
    return (change_out + floor) / (change_in + floor)
