"""The ControlStack: what the Transfer model is steered by, for one clip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The reference models' control branches, in the order Cosmos-Transfer lists them.
# "blur" is Cosmos-Transfer1's "vis".
CONTROL_NAMES = ("edge", "depth", "seg", "blur")


@dataclass(eq=False)
class ControlStack:
    """Per clip, for each enabled control: a video and a weight map.

    videos:  name -> float32 [T,H,W,3] in [0,1]; grey controls (depth, edge) may be
             read-only broadcast views of one channel (np.ascontiguousarray for a copy)
    weights: name -> float32 [T,H,W] >= 0, already normalised the Cosmos way
             (w / max(sum of weights, 1) at every site)
    """

    videos: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if set(self.videos) != set(self.weights):
            raise ValueError(
                f"controls {sorted(self.videos)} and weight maps {sorted(self.weights)} differ"
            )
        if not self.videos:
            raise ValueError("a ControlStack needs at least one control")
        unknown = set(self.videos) - set(CONTROL_NAMES)
        if unknown:
            raise ValueError(f"unknown controls {sorted(unknown)}; known: {CONTROL_NAMES}")
        t, h, w = self.shape
        for name, video in self.videos.items():
            if video.shape != (t, h, w, 3):
                raise ValueError(
                    f"control {name!r} video has shape {video.shape}, not {(t, h, w, 3)}"
                )
            if self.weights[name].shape != (t, h, w):
                raise ValueError(
                    f"control {name!r} weight map has shape {self.weights[name].shape}, "
                    f"not {(t, h, w)}"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Enabled controls in the canonical order."""
        return tuple(n for n in CONTROL_NAMES if n in self.videos)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W)."""
        t, h, w, _ = next(iter(self.videos.values())).shape
        return t, h, w
