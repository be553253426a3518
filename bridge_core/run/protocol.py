"""The small protocol through which bridge_core asks a Transfer model for frames.

bridge_core never imports torch or transfer_model at module level; anything that
satisfies :class:`TransferModel` can be plugged into the run loop (the real
Cosmos-Transfer2.5 runtime, the tiny test model, a stand-in in a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bridge_core.controls.stack import ControlStack


@dataclass(frozen=True)
class ModelRequirements:
    """What a model needs of its input, so callers can pad or resize.

    resolution_multiple: H and W must be multiples of this (VAE 8x * patch 2 = 16).
    frames_per_chunk:    frames the model generates at once; longer clips are chunked;
                         a clip's length when the spec sets none (a frame-by-frame
                         model gives a longer one: a clip's frames share its seed).
    supported_controls:  control names the model has branches for.
    max_resolution:      (W, H) the model can take at most (its positional embedding's
                         reach); None = no limit. Larger clips are resized down to fit.
    leaves_cpu_free:     the model computes elsewhere (a GPU), so the run loop reads the
                         next clip and builds its controls while it generates.
    sampling_steps:      the step counts it can sample in (a distilled student's few);
                         None = any.
    takes_guidance:      False for a model with guidance built in (a distilled student):
                         it must be sampled with guidance 0.
    """

    resolution_multiple: int
    frames_per_chunk: int
    supported_controls: tuple[str, ...]
    max_resolution: tuple[int, int] | None = None
    leaves_cpu_free: bool = False
    sampling_steps: tuple[int, ...] | None = None
    takes_guidance: bool = True


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample: steps, classifier-free guidance, and the chunking of long clips."""

    num_steps: int = 35
    guidance: float = 3.0
    num_conditional_frames: int = 1
    sigma_max: float | None = None
    # The unguided pass without the control branches: guidance then amplifies the
    # controls as well as the prompt (the reference runs the branches in both passes).
    guide_controls: bool = False


@runtime_checkable
class TransferModel(Protocol):
    """Turns one clip's ControlStack into frames."""

    @property
    def requirements(self) -> ModelRequirements: ...

    def generate(
        self,
        controls: ControlStack,
        prompt: str | Any,
        negative_prompt: str | Any | None,
        seed: int,
        settings: SamplingSettings,
    ) -> np.ndarray:
        """Frames [T,H,W,3] uint8 for ``controls`` of shape (T, H, W).

        ``prompt`` / ``negative_prompt`` are text, or prompt embeddings the model
        accepts directly (a tensor), so callers can skip the text encoder.
        """
        ...
