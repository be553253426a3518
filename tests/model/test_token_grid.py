"""Chunking, conditioning and weight-map pooling follow the codec in the model's config:
the Wan2.1 compression of Cosmos-Transfer2.5 (8x space, 4x time, 2x2 patch) and another
one (4x space, no temporal compression, 4x4 patch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import HEIGHT, SETTINGS, WIDTH, control_video, stack

from bridge_core.controls.stack import ControlStack
from transfer_model import MODEL_PRESETS, CosmosTransferModel
from transfer_model.cosmos import configs, fusion

FOUR_X = dataclasses.replace(
    MODEL_PRESETS["tiny"],
    vae_dim_mult=(1, 1, 1),
    vae_temporal_downsample=(False, False),
    patch_size=(1, 4, 4),
)


def _model(preset: configs.ModelPreset, frames_per_chunk: int = 5) -> CosmosTransferModel:
    torch.manual_seed(0)
    return CosmosTransferModel(
        configs.build_transformer(preset),
        configs.build_vae(preset),
        {"edge": configs.build_branch(preset, zero_init=False)},
        configs.flow_scheduler(),
        frames_per_chunk=frames_per_chunk,
        origin="project",
    )


@pytest.fixture(scope="module")
def four_x() -> CosmosTransferModel:
    return _model(FOUR_X)


def test_grid_is_read_from_the_configs(tiny, four_x) -> None:
    assert tiny.grid == fusion.TokenGrid(temporal=4, spatial=8, patch=(1, 2, 2))
    assert four_x.grid == fusion.TokenGrid(temporal=1, spatial=4, patch=(1, 4, 4))
    assert four_x.vae.config.scale_factor_spatial == 4
    assert four_x.vae.config.scale_factor_temporal == 1
    # The same 16-pixel token; the positional embedding covers 4x4 pixels per latent.
    assert tiny.requirements.resolution_multiple == four_x.requirements.resolution_multiple == 16
    assert tiny.max_resolution == (256, 256) and four_x.max_resolution == (128, 128)


def test_map_pooling_follows_the_grid(four_x) -> None:
    weights = torch.zeros(5, 32, 32)
    weights[2, :16, :16] = 1.0  # without temporal compression frame 2 is a latent frame
    tokens = fusion.weights_to_tokens(weights, four_x.grid).reshape(5, 2, 2)
    expected = torch.zeros(5, 2, 2)
    expected[2, 0, 0] = 1.0
    assert torch.equal(tokens, expected)
    assert four_x.grid.num_tokens(5, 32, 32) == tokens.numel()


def _condition_masks(model: CosmosTransferModel, frames: int, num_cond: int) -> list:
    """The condition mask [1, 1, T', h, w] the transformer saw at the first step of each chunk."""
    seen = []

    def grab(module, args, kwargs) -> None:
        seen.append(kwargs["condition_mask"].clone())

    settings = dataclasses.replace(
        SETTINGS, num_steps=1, guidance=0.0, num_conditional_frames=num_cond
    )
    handle = model.transformer.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        out = model.generate(stack({"edge": 1.0}, frames), torch.zeros(1, 8, 32), None, 0, settings)
    finally:
        handle.remove()
    assert out.shape == (frames, HEIGHT, WIDTH, 3)
    return seen


@pytest.mark.parametrize(
    ("name", "latent_shape", "cond_latents"),
    # 2 conditioning frames: one latent frame of a 4x temporal VAE, two without compression.
    [("tiny", (2, 8, 8), 1), ("four_x", (5, 16, 16), 2)],
)
def test_chunks_and_conditioning_follow_the_grid(
    request, name: str, latent_shape: tuple, cond_latents: int
) -> None:
    model = request.getfixturevalue(name)
    # 8 frames in chunks of 5 with 2 conditioning frames: chunks 0-4 and 3-7.
    masks = _condition_masks(model, 8, 2)
    assert len(masks) == 2
    assert masks[0].shape[2:] == latent_shape
    assert not masks[0].any()
    per_frame = masks[1][0, 0, :, 0, 0]
    assert per_frame.tolist() == [1.0] * cond_latents + [0.0] * (latent_shape[0] - cond_latents)


def test_region_map_injects_only_at_its_tokens_on_another_grid(four_x, embeds) -> None:
    weights = np.zeros((5, HEIGHT, WIDTH), np.float32)
    weights[3:, : HEIGHT // 2] = 1.0  # top half of the last two frames
    seen = []
    block = four_x.transformer.transformer_blocks[0]
    handle = block.register_forward_pre_hook(lambda module, args: seen.append(args[7]))
    try:
        four_x.generate(stack({"edge": weights}, 5), *embeds, 0, SETTINGS)
    finally:
        handle.remove()
    inside = fusion.weights_to_tokens(torch.from_numpy(weights), four_x.grid) > 0
    assert inside.sum() == 2 * 2 * 4  # two latent frames x the top 2 of 4 token rows
    for residual in seen:
        assert torch.all(residual[0, ~inside] == 0)
        assert torch.all(residual[0, inside].abs().sum(dim=-1) > 0)


def test_the_codec4x_preset_builds_the_compression_it_names() -> None:
    """What train-default --preset codec4x trains: 4x space, no time compression, tokens
    16 pixels wide, as the sampler reads it from the built configs."""
    preset = MODEL_PRESETS["codec4x"]
    grid = fusion.TokenGrid.of(configs.build_vae(preset), configs.build_transformer(preset))
    assert (grid.temporal, grid.spatial, grid.stride) == (1, 4, (16, 16))
    assert grid.latent_frames(9) == 9


def test_frame_by_frame_chunks_share_their_noise(embeds) -> None:
    """1-frame chunks carry no frame of the one before; drawing noise of their own, a
    still scene would flicker. The same control in every frame gives the same frame."""
    model = _model(FOUR_X, frames_per_chunk=1)
    # The run gives it 9-frame clips, each of one seed, not one clip (and seed) a frame.
    assert model.requirements.frames_per_chunk == 9
    still = ControlStack(
        videos={"edge": np.repeat(control_video(1, seed=2), 3, axis=0)},
        weights={"edge": np.ones((3, HEIGHT, WIDTH), np.float32)},
    )
    out, other_seed = (model.generate(still, *embeds, s, SETTINGS).astype(float) for s in (0, 1))
    change = np.abs(np.diff(out, axis=0)).mean()
    assert change < 0.02 * np.abs(out - other_seed).mean()
