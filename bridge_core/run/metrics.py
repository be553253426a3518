"""Control adherence without a network: Edge F1 and Blur SSIM of generated frames vs input.

As the Cosmos-Transfer papers measure them (DESIGN.md, "Evaluation"): Edge F1 compares
Canny maps of the input and the output; Blur SSIM blurs both the same way (the blur
control's filter) and compares them with SSIM. High values mean the output kept the
input's structure; a random model scores near 0 and near the SSIM of unrelated pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from bridge_core.controls.blur import blurred_small
from bridge_core.controls.edge import canny_edges
from bridge_core.parallel import for_each_frame

METRIC_PRESET = "medium"
# SSIM as Wang et al. (2004) define it: an 11x11 Gaussian window of sigma 1.5,
# K1 = 0.01, K2 = 0.03, for values in [0, 1].
_SSIM_WINDOW = (11, 11)
_SSIM_SIGMA = 1.5
_C1 = 0.01**2
_C2 = 0.03**2


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey pictures [H,W] float in [0,1].

    float32 is enough: the statistics are of values in [0, 1] over an 11x11 window, and
    it runs at twice float64's speed.
    """
    a, b = a.astype(np.float32), b.astype(np.float32)
    mu_a, mu_b = ssim_window(a), ssim_window(b)
    var_a = ssim_window(a * a) - mu_a**2
    var_b = ssim_window(b * b) - mu_b**2
    cov = ssim_window(a * b) - mu_a * mu_b
    return float(np.mean(ssim_map(mu_a, mu_b, var_a, var_b, cov), dtype=np.float64))


def ssim_window(x: np.ndarray) -> np.ndarray:
    """The local mean SSIM takes its statistics over, of a picture [H,W] float32."""
    return cv2.GaussianBlur(x, _SSIM_WINDOW, _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim_map(
    mu_a: np.ndarray, mu_b: np.ndarray, var_a: np.ndarray, var_b: np.ndarray, cov: np.ndarray
) -> np.ndarray:
    """SSIM at every pixel from the local statistics of two pictures, [H,W] each."""
    numerator = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    denominator = (mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2)
    return numerator / denominator


def ssims(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`ssim` of each pair of grey pictures, [N,H,W] float in [0,1] each -> [N]
    float64, over the cores."""
    scores = np.empty(len(a))

    def score(i: int) -> None:
        scores[i] = ssim(a[i], b[i])

    for_each_frame(score, len(a))
    return scores


def blur_ssim(inputs: np.ndarray, outputs: np.ndarray, preset: str = METRIC_PRESET) -> float:
    """Mean over frames of the SSIM of the blurred grey input and output, [T,H,W,3] uint8 each.

    Compared at the size the blur is computed (a quarter of each side): the blurred
    pictures hold nothing finer, and SSIM there costs a sixteenth.
    """
    return blur_ssim_of(blurred_small(inputs, preset), blurred_small(outputs, preset))


def blur_ssim_of(blurred_in: np.ndarray, blurred_out: np.ndarray) -> float:
    """:func:`blur_ssim` of frames already blurred, [T,h,w,3] float32 each."""
    return float(ssims(grey_frames(blurred_in), grey_frames(blurred_out)).mean())


def grey_frames(frames: np.ndarray) -> np.ndarray:
    """Frames [T,h,w,3] float32 -> grey [T,h,w] float32, over the cores."""
    grey = np.empty(frames.shape[:3], dtype=np.float32)

    def frame(t: int) -> None:
        cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY, dst=grey[t])

    for_each_frame(frame, len(frames))
    return grey


def edge_f1(inputs: np.ndarray, outputs: np.ndarray, preset: str = METRIC_PRESET) -> float:
    """F1 of the output's Canny edge pixels against the input's, over a clip [T,H,W,3] uint8.

    Pixels are counted over all frames together (an edge pixel must be at the same
    place to match). With no edges on either side the score is 1; on one side only, 0.
    """
    return edge_f1_of(canny_edges(inputs, preset), canny_edges(outputs, preset))


def edge_f1_of(edges_in: np.ndarray, edges_out: np.ndarray) -> float:
    # Per frame: |A and B|, |A|, |B| (counted frame by frame, over the cores).
    counts = np.empty((len(edges_in), 3), dtype=np.int64)

    def count(t: int) -> None:
        a, b = edges_in[t], edges_out[t]
        counts[t] = np.count_nonzero(a & b), np.count_nonzero(a), np.count_nonzero(b)

    for_each_frame(count, len(edges_in))
    matched, count_in, count_out = (int(n) for n in counts.sum(axis=0))
    total = count_in + count_out
    if total == 0:
        return 1.0
    # F1 = 2PR / (P + R) = 2 |A and B| / (|A| + |B|)
    return 2.0 * matched / total


@dataclass(frozen=True)
class MetricReference:
    """The input clip's side of both metrics, computed once for every variation's scores.

    edges: Canny edges [T,H,W] bool of the input; blurred: its blur at the size the blur
    is computed (see ``blurred_small``), both with ``preset``; grey: that blur in grey,
    made once on first use. ``scores(outputs)`` equals
    ``{"edge_f1": edge_f1(inputs, outputs), "blur_ssim": blur_ssim(inputs, outputs)}``.
    """

    edges: np.ndarray
    blurred: np.ndarray
    preset: str = METRIC_PRESET

    @classmethod
    def of(cls, inputs: np.ndarray, preset: str = METRIC_PRESET) -> MetricReference:
        """From the input clip [T,H,W,3] uint8."""
        return cls(canny_edges(inputs, preset), blurred_small(inputs, preset), preset)

    @cached_property
    def grey(self) -> np.ndarray:
        """The blurred clip in grey, [T,h,w] float32: what Blur SSIM and the quality gate's
        checks compare."""
        return grey_frames(self.blurred)

    def scores(self, outputs: np.ndarray) -> dict[str, float]:
        return self.scores_of(self.output_side(outputs))

    def output_side(self, outputs: np.ndarray) -> MetricReference:
        """The output clip's side [T,H,W,3] uint8, as the scores compare it (the quality
        gate's checks read its edges and blur too)."""
        return MetricReference.of(outputs, self.preset)

    def scores_of(self, output: MetricReference) -> dict[str, float]:
        """The scores of an output side (:meth:`output_side`)."""
        return {
            "edge_f1": edge_f1_of(self.edges, output.edges),
            "blur_ssim": float(ssims(self.grey, output.grey).mean()),
        }
