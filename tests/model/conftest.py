"""Shared tiny-model fixtures: random Cosmos-Transfer2.5 classes at diffusers' test sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridge_core.controls.stack import ControlStack
from bridge_core.run.protocol import SamplingSettings
from transfer_model import MODEL_PRESETS, CosmosTransferModel

HEIGHT = WIDTH = 64
TEXT_DIM = MODEL_PRESETS["tiny"].text_embed_dim
SETTINGS = SamplingSettings(num_steps=2, guidance=3.0, num_conditional_frames=1)


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny() -> CosmosTransferModel:
    """Edge and depth branches with random (not zeroed) outputs, so controls have an effect."""
    return CosmosTransferModel.from_preset(
        "tiny", ("edge", "depth"), seed=0, zero_init_branches=False
    )


@pytest.fixture(scope="module")
def embeds() -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt and negative prompt embeddings [1, 8, D]."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 8, TEXT_DIM, generator=g), torch.randn(1, 8, TEXT_DIM, generator=g)


def control_video(frames: int, seed: int = 2) -> np.ndarray:
    """[T, H, W, 3] float32 in [0, 1], on the uint8 grid like a decoded control video."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (frames, HEIGHT, WIDTH, 3)) / 255).astype(np.float32)


def stack(weights: dict[str, np.ndarray | float], frames: int) -> ControlStack:
    """A ControlStack with one random video per control and the given (or constant) maps."""
    maps = {
        name: w if isinstance(w, np.ndarray) else np.full((frames, HEIGHT, WIDTH), w, np.float32)
        for name, w in weights.items()
    }
    videos = {name: control_video(frames, seed=2 + i) for i, name in enumerate(maps)}
    return ControlStack(videos=videos, weights=maps)
