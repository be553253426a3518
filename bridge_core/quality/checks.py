"""The gate's own checks, beside the run's Edge F1 and Blur SSIM (bridge_core/run/metrics.py).

Small pure functions over arrays the metrics already made (the output's Canny edges, the
blurred frames), so a clip's checks cost a few percent of what the bridge spends on it:

- label validity: is the output's structure where the segmentation says large objects end?
  A generated clip whose objects moved or melted no longer matches its labels.
- temporal stability: does the output change from frame to frame as much as the input
  does, or flicker? And where the input does (motion agreement), or is it frozen?
- control lift: does the output match its own input better than the same input moved
  elsewhere? Absolute scores depend on the light (a night or fog clip has few edges), a
  lift does not: each score is compared with the scores of displaced copies of the input,
  which share its statistics but not the places of its structure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bridge_core.controls.edge import neighbours_differ
from bridge_core.parallel import for_each_frame
from bridge_core.run.metrics import edge_f1_of, grey_frames, ssim_map, ssim_window

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
# The displaced copies of the input a lift compares with: moved sideways by each eighth
# of the width, and mirrored and moved likewise (15 copies).
DISPLACEMENT_STEPS = 8
# Frames a lift compares, evenly spaced: its cost stays flat with the clip's length.
LIFT_FRAMES = 4
# The least spread of each score over the displaced copies a lift divides by: below it,
# differences are the copies' seams and borders, not structure (a flat output's Blur
# SSIM varies by 0.002 between copies; real clips' scores spread by 0.003-0.06).
EDGE_F1_SPREAD = 0.002
BLUR_SSIM_SPREAD = 0.005
LABEL_AGREEMENT_SPREAD = 0.005


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
    return band_ratio(structure_gradient(grey_frames(blurred)), band)


def structure_gradient(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude |d/dx| + |d/dy| (Sobel) of grey frames [T,h,w] float32 -> [T,h,w]."""
    out = np.empty_like(grey)

    def frame(t: int) -> None:
        dx = cv2.Sobel(grey[t], cv2.CV_32F, 1, 0)
        dy = cv2.Sobel(grey[t], cv2.CV_32F, 0, 1)
        np.add(np.abs(dx), np.abs(dy), out=out[t])

    for_each_frame(frame, len(grey))
    return out


def band_ratio(gradient: np.ndarray, band: np.ndarray) -> float | None:
    """Mean of ``gradient`` [T,h,w] in ``band`` [T,h,w] bool over its mean everywhere
    (:func:`label_agreement`); None for an empty or full band, 0 for a flat gradient."""
    near = np.count_nonzero(band)
    if near == 0 or near == band.size:
        return None
    total = gradient.sum(dtype=np.float64)
    if total == 0:
        return 0.0
    return float((gradient[band].sum(dtype=np.float64) / total) / (near / band.size))


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


def frame_changes(grey: np.ndarray) -> np.ndarray:
    """Where a clip changes: |grey[t+1] - grey[t]| of grey frames [T,h,w] float32 in
    [0,1] (``MetricReference.grey``) -> [T-1,h,w] float32."""
    return np.abs(np.diff(grey, axis=0))


def motion_agreement(changes_in: np.ndarray, changes_out: np.ndarray) -> float | None:
    """Does the output change where the input does? Pearson correlation over every pixel
    of :func:`frame_changes` of the input and of the output, [T-1,h,w] each: near 1 where
    the output moves with the input, 0 for a frozen output (or noise, or another scene's
    motion). None for a single frame or an input that does not change at all."""
    if changes_in.size == 0:
        return None
    # numpy's own pairwise sums, not BLAS dot products: those sum in an order that
    # depends on the thread count, and a Ray worker must score as this process does.
    a = changes_in - np.float32(changes_in.mean(dtype=np.float64))
    b = changes_out - np.float32(changes_out.mean(dtype=np.float64))
    norm_a, norm_b = (float(np.sum(x * x, dtype=np.float64)) for x in (a, b))
    if norm_a == 0:
        return None
    if norm_b == 0:
        return 0.0
    return float(np.sum(a * b, dtype=np.float64)) / float(np.sqrt(norm_a * norm_b))


def placements(x: np.ndarray, steps: int = DISPLACEMENT_STEPS) -> Iterator[np.ndarray]:
    """The clip [T,H,W,...] itself, then moved sideways (rolled along W) by each other
    multiple of 1/steps of its width, then mirrored and moved likewise: 2 * steps
    pictures, all but the first with its statistics and its structure elsewhere."""
    width = x.shape[2]
    yield x
    for mirrored in (False, True):
        source = x[:, :, ::-1] if mirrored else x
        for step in range(steps):
            if mirrored or step:
                yield np.roll(source, step * width // steps, axis=2)


def lift(own: float, nulls: Sequence[float], floor: float) -> float:
    """How many standard deviations of the ``nulls`` (at least ``floor``) ``own`` lies above
    their mean."""
    values = np.asarray(nulls, dtype=np.float64)
    return float((own - values.mean()) / max(values.std(), floor))


def _local_statistics(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSIM's local mean, variance and the centred picture of grey frames [F,h,w]."""
    mean = np.stack([ssim_window(g) for g in grey])
    variance = np.stack([ssim_window(g * g) for g in grey]) - mean**2
    return mean, variance, grey - mean


@dataclass(frozen=True)
class LiftReference:
    """The input's side of the control lift, made once per clip for every output judged.

    Does an output follow its own input rather than any input of the kind? The lift is
    the mean :func:`lift` of its Edge F1, Blur SSIM and (where a band is given) label
    agreement over the same scores against the input's displaced :func:`placements`:
    about 0 for an output of another scene, of no controls, or noise; a clip that keeps
    its geometry scores several standard deviations above the displaced copies.

    pick: the frames compared (evenly spaced); edges [F,H,W] bool (Canny) and band
    [F,h,w] bool (:func:`boundary_band`, None: no segmentation) at those frames;
    statistics: SSIM's local mean, variance and centred picture of their grey blur,
    taken before displacing, so a copy's seam (where a roll wraps round) adds no
    structure and a flat output scores the same against every copy.
    """

    pick: np.ndarray
    edges: np.ndarray
    statistics: tuple[np.ndarray, np.ndarray, np.ndarray]
    band: np.ndarray | None

    @classmethod
    def of(
        cls,
        edges: np.ndarray,
        grey: np.ndarray,
        band: np.ndarray | None = None,
        frames: int = LIFT_FRAMES,
    ) -> LiftReference:
        """From the input's edges [T,H,W] bool, grey blur [T,h,w] float32 and band [T,h,w]."""
        pick = np.unique(np.linspace(0, len(edges) - 1, min(frames, len(edges))).round())
        pick = pick.astype(int)
        return cls(
            pick, edges[pick], _local_statistics(grey[pick]), None if band is None else band[pick]
        )

    def control_lift(
        self, edges_out: np.ndarray, grey_out: np.ndarray, gradient_out: np.ndarray
    ) -> float:
        """The lift of an output clip: its edges [T,H,W] bool, grey blur [T,h,w] float32
        and that blur's :func:`structure_gradient` [T,h,w]."""
        edges_out = edges_out[self.pick]
        f1 = [edge_f1_of(e, edges_out) for e in placements(self.edges)]
        ssim = self._displaced_ssims(grey_out[self.pick])
        lifts = [lift(f1[0], f1[1:], EDGE_F1_SPREAD), lift(ssim[0], ssim[1:], BLUR_SSIM_SPREAD)]
        if self.band is not None:
            gradient = gradient_out[self.pick]
            ratios = [band_ratio(gradient, b) for b in placements(self.band)]
            if None not in ratios:
                lifts.append(lift(ratios[0], ratios[1:], LABEL_AGREEMENT_SPREAD))
        return float(np.mean(lifts))

    def _displaced_ssims(self, grey_out: np.ndarray) -> np.ndarray:
        """Mean SSIM of the output's picked frames [F,h,w] against each placement of the
        input -> [P] float64 (the first: the input itself); the covariance is of centred
        pictures."""
        mean_out, variance_out, centred_out = _local_statistics(grey_out)
        moved = [list(placements(x)) for x in self.statistics]
        count, frames = len(moved[0]), len(grey_out)
        scores = np.empty((count, frames))

        def score(k: int) -> None:
            p, t = divmod(k, frames)
            mean, variance, centred = (x[p][t] for x in moved)
            cov = ssim_window(centred * centred_out[t])
            local = ssim_map(mean, mean_out[t], variance, variance_out[t], cov)
            scores[p, t] = np.mean(local, dtype=np.float64)

        for_each_frame(score, count * frames)
        return scores.mean(axis=1)
