"""The gate's own checks, beside the run's Edge F1 and Blur SSIM (bridge_core/run/metrics.py).

Small pure functions over arrays the metrics already made (the output's Canny edges, the
blurred frames), so a clip's checks cost a few percent of what the bridge spends on it:

- label validity: is the output's structure where the segmentation says large objects end?
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
# Output structure counts as on a boundary within this share of the blurred picture's
# short side (1 px at 128, 3 px at 704, a quarter of that in the frame's own pixels):
# generated outlines are rarely on the exact pixel.
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
    values, counts = np.unique(ids[:, ::4, ::4], return_counts=True)  # shares, from 1/16th
    large = values[counts >= min_share * counts.sum()]
    out = np.empty(ids.shape, dtype=bool)
    kept = np.int32(-1)

    def frame(t: int) -> None:
        merged = np.where(np.isin(ids[t], large, kind="table"), ids[t], kept)
        out[t] = neighbours_differ(merged[None], _between_large)[0]

    for_each_frame(frame, len(ids))
    return out


def _between_large(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b) & (a >= 0) & (b >= 0)


def boundary_band(
    ids: np.ndarray,
    size: tuple[int, int],
    min_share: float = LARGE_SEGMENT_SHARE,
    tolerance: float = BOUNDARY_TOLERANCE,
) -> np.ndarray:
    """Pixels near a large object's boundary (:func:`object_boundaries`) on a grid of
    ``size`` (h, w), [T,H,W] int ids -> [T,h,w] bool: within ``tolerance`` of the short
    side (at least 1 px). The grid is the blurred frames' (a quarter of each side)."""
    _, h, w = ids.shape
    rows = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(int)
    boundaries = object_boundaries(ids[:, rows][:, :, cols], min_share)
    radius = max(round(tolerance * min(size)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = np.empty(boundaries.shape, dtype=bool)

    def frame(t: int) -> None:
        np.greater(cv2.dilate(boundaries[t].view(np.uint8), kernel), 0, out=out[t])

    for_each_frame(frame, len(out))
    return out


def label_agreement(blurred: np.ndarray, band: np.ndarray) -> float | None:
    """How much stronger the output's structure is near large objects' boundaries than
    anywhere: mean gradient magnitude in the band over the mean everywhere, of the
    blurred output [T,h,w,3] float32 in [0,1] and the band [T,h,w] bool.

    At the blur's scale texture and noise are gone and object outlines kept (the blur
    preserves edges), and a ratio of gradients does not care how dark or hazy the clip
    is. 1 means the outlines ignore the labels (noise, another scene); higher, they
    follow them. None where there is no boundary to agree with; 0 for a flat output.
    """
    near = np.count_nonzero(band)
    if near == 0 or near == band.size:
        return None
    sums = np.zeros((len(band), 2))

    def frame(t: int) -> None:
        grey = cv2.cvtColor(blurred[t], cv2.COLOR_RGB2GRAY)
        dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
        dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        gradient = np.abs(dx) + np.abs(dy)
        sums[t] = gradient[band[t]].sum(dtype=np.float64), gradient.sum(dtype=np.float64)

    for_each_frame(frame, len(band))
    on_band, total = sums.sum(axis=0)
    if total == 0:
        return 0.0
    return float((on_band / total) / (near / band.size))


def frame_change(frames: np.ndarray) -> float | None:
    """Mean absolute change between consecutive frames, [T,H,W,C] float32 in [0,1] -> a
    value in [0,1]; None for a single frame."""
    if len(frames) < 2:
        return None
    sums = np.empty(len(frames) - 1)

    def pair(t: int) -> None:
        sums[t] = cv2.norm(frames[t + 1], frames[t], cv2.NORM_L1)

    for_each_frame(pair, len(sums))
    return float(sums.sum() / (sums.size * frames[0].size))


def temporal_ratio(
    change_out: float | None, change_in: float | None, floor: float = CHANGE_FLOOR
) -> float | None:
    """The output's frame-to-frame change over the input's (:func:`frame_change` of each),
    both raised by ``floor``: about 1 for a stable clip, far above for one that flickers."""
    if change_out is None or change_in is None:
        return None
    return (change_out + floor) / (change_in + floor)
