"""The prompt-embedding cache: the encoder is built only on a miss; embeddings come back equal."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from conftest import SETTINGS, TEXT_DIM, stack
from safetensors.torch import load_file

from transfer_model import CosmosReasonEncoder, CosmosTransferModel, PromptEmbeddingCache


class StandInEncoder:
    """A deterministic tiny text encoder: [B, L, TEXT_DIM] from the prompt's characters."""

    built = 0

    def __init__(self) -> None:
        StandInEncoder.built += 1

    def encode(self, prompts: list[str], max_length: int) -> torch.Tensor:
        out = []
        for prompt in prompts:
            seed = sum(map(ord, prompt)) % 2**31
            out.append(
                torch.randn(max_length, TEXT_DIM, generator=torch.Generator().manual_seed(seed))
            )
        return torch.stack(out)


def _cache(folder, max_length: int = 8) -> PromptEmbeddingCache:
    return PromptEmbeddingCache("stand-in", "v1", max_length, StandInEncoder, folder=folder)


def test_encoder_runs_only_on_a_miss(tmp_path) -> None:
    StandInEncoder.built = 0
    first = _cache(tmp_path).embed(["a wet street", "fog"])
    assert StandInEncoder.built == 1
    again = _cache(tmp_path).embed(["fog", "a wet street"])
    assert StandInEncoder.built == 1
    assert torch.equal(first[0], again[1]) and torch.equal(first[1], again[0])
    assert first[0].shape == (1, 8, TEXT_DIM)
    stored = load_file(_cache(tmp_path).path("fog"))["prompt_embeds"]
    assert torch.equal(stored, first[1])


def test_key_includes_length_and_revision(tmp_path) -> None:
    base = _cache(tmp_path)
    other_rev = PromptEmbeddingCache("stand-in", "v2", 8, StandInEncoder, folder=tmp_path)
    assert base.path("fog") != _cache(tmp_path, max_length=16).path("fog")
    assert base.path("fog") != other_rev.path("fog")


def test_second_generation_never_builds_the_encoder(tmp_path) -> None:
    model = CosmosTransferModel.from_preset(
        "tiny", ("edge",), zero_init_branches=False, prompt_cache=_cache(tmp_path)
    )
    controls = stack({"edge": 1.0}, 5)
    StandInEncoder.built = 0
    first = model.generate(controls, "a rainy dock", "blurry", 0, SETTINGS)
    assert StandInEncoder.built == 1
    second = model.generate(controls, "a rainy dock", "blurry", 0, SETTINGS)
    assert StandInEncoder.built == 1
    assert np.array_equal(first, second)


class _TinyLM(torch.nn.Module):
    """Returns fixed hidden states: an embedding layer and two 'layers'."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, ids: torch.Tensor, output_hidden_states: bool) -> SimpleNamespace:
        base = ids[..., None].float() * torch.arange(1.0, 5.0)
        return SimpleNamespace(hidden_states=(base, base * self.scale, base**2))


class _Tokenizer:
    def apply_chat_template(self, conversation, max_length, **kwargs) -> list[int]:
        text = conversation[-1]["content"][0]["text"]
        return ([len(text)] * max_length)[:max_length]


def test_reason_encoder_standardises_and_concatenates_layers() -> None:
    out = CosmosReasonEncoder(_TinyLM(), _Tokenizer()).encode(["abc"], max_length=3)
    assert out.shape == (1, 3, 8)  # two layers of 4 features
    assert torch.allclose(out[..., :4].mean(dim=-1), torch.zeros(1, 3), atol=1e-6)
    assert torch.allclose(out[..., 4:].std(dim=-1), torch.ones(1, 3), atol=1e-6)
