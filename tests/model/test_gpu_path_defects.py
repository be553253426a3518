"""Defects of the real-size GPU path, reproduced on a CPU with the tiny preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import stack

from bridge_core.run.protocol import SamplingSettings
from transfer_model import CosmosTransferModel

ONE_STEP = SamplingSettings(num_steps=1, guidance=0.0)


def test_bf16_transformer_with_an_fp32_vae(embeds) -> None:
    """diffusers saves the Wan VAE in fp32 beside a bf16 transformer: the control latents
    must be normalised in the VAE's precision and handed to the branches in theirs."""
    model = CosmosTransferModel.from_preset("tiny", ("edge",), zero_init_branches=False)
    model.transformer.to(torch.bfloat16)
    for branch in model.branches.values():
        branch.to(torch.bfloat16)
    assert model.vae.dtype == torch.float32
    frames = model.generate(stack({"edge": 1.0}, 5), *embeds, 0, ONE_STEP)
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8


def test_a_vae_stored_in_fp32_loads_in_fp32_beside_a_bf16_model(tmp_path, embeds) -> None:
    from transfer_model.cosmos.loading import load_transfer_model

    CosmosTransferModel.from_preset("tiny", ("edge",), zero_init_branches=False).save_pretrained(
        tmp_path / "model"
    )
    model = load_transfer_model(tmp_path / "model", ("edge",), device="cpu", dtype=torch.bfloat16)
    assert model.transformer.dtype == model.branches["edge"].dtype == torch.bfloat16
    assert model.vae.dtype == torch.float32
    frames = model.generate(stack({"edge": 1.0}, 5), *embeds, 0, ONE_STEP)
    assert frames.shape == (5, 64, 64, 3)


def test_fusion_sums_in_fp32_in_place_and_hands_the_base_its_dtype() -> None:
    """At 720p x 93 frames a block's residual is 330 MB in bf16: the sums are added into in
    place, and cast for the base block by block, never holding both copies of every block."""
    import gc
    import weakref

    from transfer_model.cosmos import fusion

    g = torch.Generator().manual_seed(0)
    branches = [[torch.randn(1, 12, 8, generator=g).bfloat16() for _ in range(3)] for _ in range(2)]
    weights = [torch.rand(12, generator=g) for _ in branches]
    expected = [
        sum(b[i].float() * w[None, :, None] for b, w in zip(branches, weights, strict=True))
        for i in range(3)
    ]
    fused = fusion.accumulate(None, branches[0], weights[0])
    first = [id(f) for f in fused]
    fused = fusion.accumulate(fused, branches[1], weights[1])
    assert [id(f) for f in fused] == first, "the second branch made new sums"
    assert all(f.dtype == torch.float32 for f in fused)
    torch.testing.assert_close(fused, expected, rtol=1e-6, atol=1e-6)
    sums = [weakref.ref(f) for f in fused]
    handed = fusion.to_base_dtype(fused, torch.bfloat16)
    gc.collect()
    assert all(t.dtype == torch.bfloat16 for t in handed)
    assert all(ref() is None for ref in sums), "an fp32 sum outlived its hand-over"


def test_the_text_encoder_streams_under_offloading_and_is_bf16_on_a_cpu() -> None:
    """The 7B encoder is 16 GB in bf16: under an offloading policy it must not be put on
    a 16 GB card whole, and on a CPU it must not load in fp32 (30 GB)."""
    from transfer_model.cosmos.prompts import encoder_placement

    cuda, cpu, bf16 = torch.device("cuda"), torch.device("cpu"), torch.bfloat16
    assert encoder_placement(cuda, bf16, "model_offload") == (True, bf16)
    assert encoder_placement(cuda, bf16, "group_offload") == (True, bf16)
    assert encoder_placement(cuda, bf16, "none") == (False, bf16)
    assert encoder_placement(cpu, torch.float32, "none") == (False, bf16)


def test_the_guardrail_checks_on_the_execution_device_and_leaves_it(embeds) -> None:
    """NVIDIA's checker holds large models: on the GPU while it checks, in CPU memory
    while the transformer denoises."""
    from transfer_model.cosmos.errors import GuardrailBlockedError

    class Checker:
        def __init__(self) -> None:
            self.moves: list[str] = []

        def to(self, device: torch.device | str) -> None:
            self.moves.append(str(device))

        def check_text_safety(self, prompt: str) -> bool:
            self.moves.append("checked")
            return False

    checker = Checker()
    model = CosmosTransferModel.from_preset("tiny", ("edge",), safety_checker=checker)
    model.device = torch.device("cuda")  # only the checker moves before the refusal
    with pytest.raises(GuardrailBlockedError):
        model.generate(stack({"edge": 1.0}, 5), "a prompt", *embeds[1:], 0, ONE_STEP)
    assert checker.moves == ["cuda", "checked", "cpu"]


def test_the_prompt_cache_key_survives_the_encoder_download(tmp_path, monkeypatch) -> None:
    """A hub snapshot gains text_encoder/ once the encoder has been downloaded into it;
    the model must still be keyed by its hub id, or every cached prompt misses again and
    the keys become this machine's paths."""
    from transfer_model.cosmos import loading

    snapshot = tmp_path / "hub" / "snapshots" / "abc123"
    CosmosTransferModel.from_preset("tiny", ("edge",)).save_pretrained(snapshot)
    monkeypatch.setattr(loading, "fetch", lambda repo_id, revision, patterns: snapshot)

    def encoder_id() -> str:
        model = loading.load_transfer_model("someone/tiny-transfer", ("edge",), device="cpu")
        return model.prompt_cache.encoder_id

    before = encoder_id()
    (snapshot / "text_encoder").mkdir()  # the encoder, downloaded on a first cache miss
    assert encoder_id() == before == "someone/tiny-transfer"


@pytest.mark.parametrize("frames", [0, 6, 92])
def test_a_chunk_length_the_vae_cannot_take_is_refused_at_load(tmp_path, frames) -> None:
    import json

    from transfer_model.cosmos.loading import load_transfer_model

    folder = tmp_path / "model"
    CosmosTransferModel.from_preset("tiny", ("edge",)).save_pretrained(folder)
    marker = folder / "transfer_model.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "frames_per_chunk": frames}))
    with pytest.raises(ValueError, match=rf"frames_per_chunk={frames} is not 1 \+ 4k"):
        load_transfer_model(folder, ("edge",), device="cpu")
