"""Weight maps on the token grid, normalisation, and what several branches inject."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HEIGHT, SETTINGS, WIDTH, stack

from transfer_model.cosmos import fusion

# Cosmos-Transfer2.5's compression: Wan2.1 VAE 4x time and 8x space, 2x2 patch.
WAN21 = fusion.TokenGrid(temporal=4, spatial=8, patch=(1, 2, 2))


def test_map_of_ones_stays_exactly_one() -> None:
    tokens = fusion.weights_to_tokens(torch.ones(9, HEIGHT, WIDTH), WAN21)
    assert tokens.shape == (3 * 4 * 4,)
    assert torch.equal(tokens, torch.ones_like(tokens))


def test_tokens_average_their_pixels_and_frame_groups() -> None:
    weights = torch.zeros(5, 32, 32)
    weights[0, :16, :16] = 1.0  # frame 0 is latent frame 0 on its own
    weights[1:3, 16:, 16:] = 1.0  # half of the group of frames 1-4
    tokens = fusion.weights_to_tokens(weights, WAN21).reshape(2, 2, 2)
    expected = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.5]]])
    assert torch.equal(tokens, expected)


def test_bad_map_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="not"):
        fusion.weights_to_tokens(torch.ones(4, 32, 32), WAN21)


def test_sums_above_one_are_normalised() -> None:
    a, b = fusion.normalise([torch.tensor([0.8, 0.3, 0.0]), torch.tensor([0.8, 0.2, 0.0])])
    assert torch.allclose(a, torch.tensor([0.5, 0.3, 0.0]))
    assert torch.allclose(b, torch.tensor([0.5, 0.2, 0.0]))


def test_residuals_sum_in_fp32() -> None:
    first = [torch.full((1, 3, 2), 1.0, dtype=torch.bfloat16)]
    second = [torch.full((1, 3, 2), 2.0**-9, dtype=torch.bfloat16)]
    fused = fusion.accumulate(None, first, torch.ones(3))
    fused = fusion.accumulate(fused, second, torch.ones(3))
    # In bf16, 1 + 2^-9 rounds back to 1.
    assert fused[0].dtype == torch.float32
    assert torch.all(fused[0] == 1.0 + 2.0**-9)


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_zero_map_branch_changes_nothing_and_runs_nothing(tiny, embeds) -> None:
    prompt, negative = embeds
    alone = tiny.generate(stack({"edge": 1.0}, 9), prompt, negative, 3, SETTINGS)
    depth_calls = _count_calls(tiny.branches["depth"])
    with_zero = tiny.generate(stack({"edge": 1.0, "depth": 0.0}, 9), prompt, negative, 3, SETTINGS)
    assert np.array_equal(alone, with_zero)
    assert depth_calls[0] == 0


def test_two_branches_both_count(tiny, embeds) -> None:
    prompt, negative = embeds
    edge = tiny.generate(stack({"edge": 1.0}, 5), prompt, negative, 3, SETTINGS)
    both = tiny.generate(stack({"edge": 0.5, "depth": 0.5}, 5), prompt, negative, 3, SETTINGS)
    assert not np.array_equal(edge, both)


def test_region_map_injects_only_at_its_tokens(tiny, embeds) -> None:
    """The residual reaching the first injected base block is zero outside the region."""
    prompt, negative = embeds
    weights = np.zeros((5, HEIGHT, WIDTH), np.float32)
    weights[:, :, : WIDTH // 2] = 1.0  # left half
    seen = []

    def grab(module: torch.nn.Module, args: tuple) -> None:
        seen.append(args[7])  # the block's controlnet_residual, [1, N, D]

    handle = tiny.transformer.transformer_blocks[0].register_forward_pre_hook(grab)
    try:
        tiny.generate(stack({"edge": weights}, 5), prompt, negative, 3, SETTINGS)
    finally:
        handle.remove()
    inside = fusion.weights_to_tokens(torch.from_numpy(weights), tiny.grid) > 0
    assert seen and all(r is not None for r in seen)
    for residual in seen:
        assert torch.all(residual[0, ~inside] == 0)
        assert torch.all(residual[0, inside].abs().sum(dim=-1) > 0)


def test_same_seed_same_frames_other_seed_other_frames(tiny, embeds) -> None:
    prompt, negative = embeds
    controls = stack({"edge": 0.7, "depth": 0.3}, 5)
    first = tiny.generate(controls, prompt, negative, 11, SETTINGS)
    again = tiny.generate(controls, prompt, negative, 11, SETTINGS)
    other = tiny.generate(controls, prompt, negative, 12, SETTINGS)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
