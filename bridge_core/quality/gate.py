"""The quality gate's verdict: a clip's scores and the spec's thresholds -> accepted, or
rejected with the reasons; and the seed each retry is generated with.

The scores are Edge F1 and Blur SSIM (bridge_core/run/metrics.py), label agreement,
temporal ratio, motion agreement and control lift (bridge_core/quality/checks.py) and,
where the spec sets one, the VLM critic's (bridge_core/quality/critic.py). A score that
cannot be measured for a clip (no rgb to compare with, no segmentation, a single frame)
is not held against it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from bridge_core.quality.checks import (
    LiftReference,
    band_ratio,
    frame_change,
    frame_changes,
    motion_agreement,
    structure_gradient,
    temporal_ratio,
)
from bridge_core.run.metrics import MetricReference
from bridge_core.spec.models import CriticSpec, QualitySpec

Scores = dict[str, float | None]
Bound = Literal["min", "max"]
# Every score the checks give a clip (the critic's comes on top, where one is set).
SCORE_NAMES = (
    "edge_f1",
    "blur_ssim",
    "label_agreement",
    "temporal_ratio",
    "motion_agreement",
    "control_lift",
)


@dataclass(frozen=True)
class CriticAnswer:
    """What the critic said of a clip: the share of trials without an anomaly, and why not."""

    score: float
    reason: str


class ClipCritic(Protocol):
    """Judges a clip's frames [T,H,W,3] uint8 (bridge_core.quality.critic.Critic)."""

    def judge(self, frames: np.ndarray) -> CriticAnswer: ...


def thresholds(quality: QualitySpec) -> dict[str, tuple[Bound, float]]:
    """Score name -> (bound, limit) of every check the spec sets; none when the gate is off."""
    if not quality.enabled:
        return {}
    limits: dict[str, tuple[Bound, float | None]] = {
        "edge_f1": ("min", quality.min_edge_f1),
        "blur_ssim": ("min", quality.min_blur_ssim),
        "label_agreement": ("min", quality.min_label_agreement),
        "temporal_ratio": ("max", quality.max_temporal_ratio),
        "motion_agreement": ("min", quality.min_motion_agreement),
        "control_lift": ("min", quality.min_control_lift),
        "critic": ("min", quality.critic.min_score if quality.critic else None),
    }
    return {name: (bound, limit) for name, (bound, limit) in limits.items() if limit is not None}


def critic_question(critic: CriticSpec) -> dict[str, Any]:
    """What the critic's answer depends on: its settings less its threshold and where it
    runs."""
    return critic.model_dump(exclude={"min_score", "device", "dtype"})


def gate_settings(quality: QualitySpec) -> dict[str, Any]:
    """Everything a verdict depends on (the thresholds, and what the critic is asked):
    a clip judged under other settings is judged again."""
    asked = quality.enabled and quality.critic is not None
    return {
        "thresholds": thresholds(quality),
        "critic": critic_question(quality.critic) if asked else None,
    }


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: list[str] = field(default_factory=list)


def judge(scores: Scores, quality: QualitySpec, critic_reason: str = "") -> Verdict:
    """The verdict on a clip's ``scores``: rejected where any set threshold is failed."""
    reasons = []
    for name, (bound, limit) in thresholds(quality).items():
        value = scores.get(name)
        if value is None:
            continue
        if bound == "min" and value < limit:
            reasons.append(f"{name} {value:.3f} < {limit:g}")
        elif bound == "max" and value > limit:
            reasons.append(f"{name} {value:.3f} > {limit:g}")
        else:
            continue
        if name == "critic" and critic_reason:
            reasons[-1] += f" ({critic_reason})"
    return Verdict(not reasons, reasons)


def worst_margin(scores: Scores, quality: QualitySpec) -> float | None:
    """The smallest relative margin of a clip's scores to their thresholds (negative:
    failed), to list the worst clips first; None when nothing was checked."""
    margins = []
    for name, (bound, limit) in thresholds(quality).items():
        value = scores.get(name)
        if value is None:
            continue
        gap = value - limit if bound == "min" else limit - value
        margins.append(gap / max(abs(limit), 1e-6))
    return min(margins) if margins else None


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of a clip's ``attempt``-th try (0: the first, ``seed`` itself): derived
    from both, so a rerun retries with the same seeds."""
    if attempt == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:retry:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Judged:
    scores: Scores
    verdict: Verdict


@dataclass
class ClipJudge:
    """A clip's input side of every check, made once for all its variations and tries.

    reference: the metrics' input side (None: the dataset has no rgb)
    band:      [T,h,w] bool at the blur's size (``reference.blurred``), pixels near large
               objects' boundaries (None: no segmentation)
    """

    quality: QualitySpec
    reference: MetricReference | None
    band: np.ndarray | None
    critic: ClipCritic | None = None

    def __post_init__(self) -> None:
        reference = self.reference
        self.change_in = frame_change(reference.blurred) if reference else None
        self.changes_in = frame_changes(reference.grey) if reference else None
        self.lift_in = (
            LiftReference.of(reference.edges, reference.grey, self.band) if reference else None
        )

    def judge(self, frames: np.ndarray) -> Judged:
        """Scores and verdict of an output clip [T,H,W,3] uint8."""
        scores: Scores = dict.fromkeys(SCORE_NAMES)
        if self.reference is not None:
            output = self.reference.output_side(frames)
            gradient = structure_gradient(output.grey)
            scores.update(self.reference.scores_of(output))
            scores["temporal_ratio"] = temporal_ratio(frame_change(output.blurred), self.change_in)
            scores["motion_agreement"] = motion_agreement(
                self.changes_in, frame_changes(output.grey)
            )
            scores["control_lift"] = self.lift_in.control_lift(output.edges, output.grey, gradient)
            if self.band is not None:
                scores["label_agreement"] = band_ratio(gradient, self.band)
        reason = ""
        if self.critic is not None and self.quality.enabled:
            answer = self.critic.judge(frames)
            scores["critic"], reason = answer.score, answer.reason
        return Judged(scores, judge(scores, self.quality, reason))
