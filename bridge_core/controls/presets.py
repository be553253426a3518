"""The reference models' preprocessing presets (Cosmos-Transfer1/2.5)."""

from __future__ import annotations

from dataclasses import dataclass

PRESET_NAMES = ("very_low", "low", "medium", "high", "very_high")


@dataclass(frozen=True)
class CannyThresholds:
    low: int
    high: int


@dataclass(frozen=True)
class BilateralBlur:
    """cv2.bilateralFilter's (d, sigmaColor, sigmaSpace) at full resolution."""

    diameter: int
    sigma_color: float
    sigma_space: float


EDGE_PRESETS = {
    "very_low": CannyThresholds(20, 50),
    "low": CannyThresholds(50, 100),
    "medium": CannyThresholds(100, 200),
    "high": CannyThresholds(200, 300),
    "very_high": CannyThresholds(300, 400),
}

BLUR_PRESETS = {
    "very_low": BilateralBlur(15, 100, 50),
    "low": BilateralBlur(15, 100, 50),
    "medium": BilateralBlur(30, 150, 100),
    "high": BilateralBlur(50, 300, 150),
    "very_high": BilateralBlur(50, 300, 150),
}

DEFAULT_PRESET = "medium"
