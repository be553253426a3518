"""The TransferModel surface: requirements, input checks, memory policies."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HEIGHT, SETTINGS, WIDTH, stack

from bridge_core.controls.stack import ControlStack
from bridge_core.run.protocol import SamplingSettings, TransferModel
from transfer_model import MEMORY_POLICIES, CosmosTransferModel


def test_satisfies_the_protocol(tiny) -> None:
    assert isinstance(tiny, TransferModel)
    req = tiny.requirements
    assert req.resolution_multiple == 16
    assert req.frames_per_chunk == 5
    assert req.supported_controls == ("edge", "depth")


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="preset 'huge'"):
        CosmosTransferModel.from_preset("huge")


def test_control_without_branch_is_refused(tiny, embeds) -> None:
    with pytest.raises(ValueError, match=r"\['seg'\] have no branch"):
        tiny.generate(stack({"seg": 1.0}, 5), *embeds, 0, SETTINGS)


def test_unknown_control_name_is_refused() -> None:
    video = np.zeros((5, HEIGHT, WIDTH, 3), np.float32)
    with pytest.raises(ValueError, match="unknown controls"):
        ControlStack({"normals": video}, {"normals": video[..., 0]})


def test_mismatched_control_sizes_are_refused() -> None:
    small = np.zeros((5, 32, 32, 3), np.float32)
    big = np.zeros((5, HEIGHT, WIDTH, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        ControlStack({"edge": big, "depth": small}, {"edge": big[..., 0], "depth": small[..., 0]})


@pytest.mark.parametrize(
    ("height", "width", "message"), [(40, 64, "not a multiple of 16"), (288, 64, "exceeds")]
)
def test_resolution_the_model_cannot_take(tiny, embeds, height, width, message) -> None:
    video = np.zeros((5, height, width, 3), np.float32)
    controls = ControlStack({"edge": video}, {"edge": video[..., 0]})
    with pytest.raises(ValueError, match=message):
        tiny.generate(controls, *embeds, 0, SETTINGS)


def test_clip_shorter_than_its_conditioning_is_refused(tiny, embeds) -> None:
    with pytest.raises(ValueError, match="too short"):
        tiny.generate(stack({"edge": 1.0}, 1), *embeds, 0, SETTINGS)


def test_text_prompt_needs_an_encoder(tiny, embeds) -> None:
    with pytest.raises(ValueError, match="no text encoder"):
        tiny.generate(stack({"edge": 1.0}, 5), "a street at night", embeds[1], 0, SETTINGS)


def test_unknown_memory_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="memory policy 'all'"):
        CosmosTransferModel.from_preset("tiny", ("edge",), memory="all")


def test_memory_policies_give_the_same_frames(embeds) -> None:
    """On a CPU every policy only moves models between CPU and CPU: frames must not change
    beyond rounding (the offloading policies run guidance as two passes, the others as one
    batch of two)."""
    controls = stack({"edge": 1.0}, 5)
    settings = SamplingSettings(num_steps=1, guidance=3.0)
    frames = {
        policy: CosmosTransferModel.from_preset(
            "tiny", ("edge",), zero_init_branches=False, memory=policy
        ).generate(controls, *embeds, 5, settings)
        for policy in MEMORY_POLICIES
    }
    for policy in MEMORY_POLICIES:
        difference = np.abs(frames[policy].astype(int) - frames["none"].astype(int)).max()
        assert difference <= 1, policy


def test_new_branches_start_as_no_ops(embeds) -> None:
    """Zero-initialised branches leave the base model's output exactly as it is."""
    zeroed = CosmosTransferModel.from_preset("tiny", ("edge",), seed=4)
    with_control = zeroed.generate(stack({"edge": 1.0}, 5), *embeds, 5, SETTINGS)
    without = zeroed.generate(stack({"edge": 0.0}, 5), *embeds, 5, SETTINGS)
    assert np.array_equal(with_control, without)


def test_guidance_in_one_batch_matches_two_passes(tiny, embeds) -> None:
    """Guided and unguided passes as one batch of two: the same latents within fp32
    rounding, with one forward of each model per step instead of two."""
    import torch

    from transfer_model import Branch, sample

    video = torch.rand(1, 3, 9, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
    branch = Branch("edge", tiny.branches["edge"], video * 2 - 1, torch.ones(9, HEIGHT, WIDTH))
    calls = []
    hook = tiny.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["hidden_states"].shape[0]),
        with_kwargs=True,
    )
    try:
        results = {
            batched: sample(
                tiny.transformer,
                tiny.vae,
                tiny.scheduler.from_config(tiny.scheduler.config),
                [branch],
                *embeds,
                torch.Generator().manual_seed(0),
                num_steps=2,
                guidance=3.0,
                frames_per_chunk=5,
                batch_guidance=batched,
            )
            for batched in (True, False)
        }
    finally:
        hook.remove()
    # Two chunks x two steps: one forward of batch 2 each, or two of batch 1.
    assert calls == [2] * 4 + [1] * 8
    torch.testing.assert_close(results[True].latents, results[False].latents, rtol=0, atol=1e-5)


def test_guided_controls_leave_the_branches_out_of_the_unguided_pass(tiny, embeds) -> None:
    """With guide_controls the branch runs in the guided pass only (the base in both), and
    the frames change: guidance now pushes towards the controls too."""
    calls = []
    hook = tiny.branches["edge"].register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["latents"].shape[0]), with_kwargs=True
    )
    controls = stack({"edge": 1.0}, 5)
    try:
        plain = tiny.generate(controls, *embeds, 0, SamplingSettings(num_steps=2))
        plain_calls, calls[:] = list(calls), []
        guided = SamplingSettings(num_steps=2, guide_controls=True)
        both = tiny.generate(controls, *embeds, 0, guided)
    finally:
        hook.remove()
    assert plain_calls == [2, 2]  # both passes in one batch, per step
    assert calls == [1, 1]  # the guided pass alone
    assert not np.array_equal(plain, both)  # a tiny random branch moves them a little


def test_attention_kernel_is_chosen_by_name(embeds) -> None:
    """The spec's names are the model's; a pinned SDPA kernel gives the frames of the
    default choice on a CPU; a kernel this machine lacks is refused, naming it."""
    from typing import get_args

    from bridge_core.spec.models import ModelSpec
    from transfer_model import ATTENTION_BACKENDS

    assert set(get_args(ModelSpec.model_fields["attention"].annotation)) == set(ATTENTION_BACKENDS)
    controls, settings = stack({"edge": 1.0}, 5), SamplingSettings(num_steps=2, guidance=3.0)
    model = CosmosTransferModel.from_preset("tiny", ("edge",), zero_init_branches=False)
    before = model.generate(controls, *embeds, 0, settings)
    model.set_attention("sdpa_math")
    assert np.array_equal(model.generate(controls, *embeds, 0, settings), before)
    with pytest.raises(ValueError, match="attention 'fastest' is not one of"):
        model.set_attention("fastest")
