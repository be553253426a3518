"""Safety checking of prompts and generated videos.

NVIDIA's model license forbids bypassing the guardrails of its models, so any weights
that are not known to be this project's own (hub ids under nvidia/, folders without
this project's marker) get the cosmos-guardrail checks; only models this project
builds get the pass-through checker.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

# Where weights come from: NVIDIA's checkpoints (and anything derived from them), or
# models this project built itself (random presets, their trained descendants).
Origin = Literal["nvidia", "project"]

GUARDRAIL_INSTALL = (
    "pip install 'cosmos-transfer-bridge[guardrail]' (or pip install cosmos-guardrail)"
)


class SafetyChecker(Protocol):
    """What generation asks of a checker (cosmos_guardrail.CosmosSafetyChecker's surface)."""

    def check_text_safety(self, prompt: str) -> bool: ...

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray | None:
        """frames [T,H,W,3] uint8 -> the frames to keep, or None when unsafe."""
        ...


class PassThroughChecker:
    """Accepts everything; only for models this project builds."""

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray | None:
        return frames


def cosmos_guardrail() -> SafetyChecker:
    """NVIDIA's Cosmos guardrail, imported only when NVIDIA weights are used."""
    try:
        from cosmos_guardrail import CosmosSafetyChecker
    except ImportError as err:
        raise ImportError(
            f"NVIDIA's Cosmos weights must run with their safety guardrail: {GUARDRAIL_INSTALL}"
        ) from err
    return CosmosSafetyChecker()


def checker_for(origin: Origin) -> SafetyChecker:
    """The guardrail for NVIDIA weights, the pass-through checker for the project's own."""
    return PassThroughChecker() if origin == "project" else cosmos_guardrail()
