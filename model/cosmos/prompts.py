"""Prompt embeddings: the Cosmos-Reason1 text encoder and an on-disk cache in front of it.

The real encoder is a 7B vision-language model (about 16 GB in bf16). Generation
needs only its output, so embeddings are stored as safetensors keyed by encoder,
revision, prompt and length; the encoder is built only when a prompt is missing from
the cache and is released before denoising starts.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from transfer_model.cosmos.memory import MemoryPolicy

# Prompt length of the hash encoder's embeddings (the default model was trained on it).
HASH_PROMPT_TOKENS = 128
SYSTEM_PROMPT = "You are a helpful assistant who will provide prompts to an image generator."


class TextEncoder(Protocol):
    """Turns prompts into the embeddings the transformer cross-attends to."""

    def encode(self, prompts: list[str], max_length: int) -> torch.Tensor:
        """-> [B, max_length, D]"""
        ...


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/cosmos-transfer-bridge/prompt-embeds (~/.cache when unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cosmos-transfer-bridge" / "prompt-embeds"


class PromptEmbeddingCache:
    """Embeddings of prompts, from disk when known, else from an encoder built for the misses.

    load_encoder: builds the encoder (called at most once per :meth:`embed` call, and
    only on a miss); the encoder is dropped, and GPU memory emptied, before returning.
    """

    def __init__(
        self,
        encoder_id: str,
        revision: str | None,
        max_length: int,
        load_encoder: Callable[[], TextEncoder],
        folder: Path | None = None,
    ):
        self.encoder_id = encoder_id
        self.revision = revision
        self.max_length = max_length
        self.load_encoder = load_encoder
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def path(self, prompt: str) -> Path:
        """The file that holds ``prompt``'s embedding."""
        key = json.dumps([self.encoder_id, self.revision, self.max_length, prompt])
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.safetensors"

    def embed(self, prompts: list[str]) -> list[torch.Tensor]:
        """One [1, max_length, D] CPU tensor per prompt."""
        found = {
            p: load_file(self.path(p))["prompt_embeds"]
            for p in set(prompts)
            if self.path(p).exists()
        }
        missing = sorted(set(prompts) - set(found))
        if missing:
            encoder = self.load_encoder()
            embeds = encoder.encode(missing, self.max_length).cpu()
            del encoder
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.folder.mkdir(parents=True, exist_ok=True)
            for prompt, embed in zip(missing, embeds, strict=True):
                found[prompt] = embed[None].contiguous()
                # Write then rename, so a killed run never leaves a truncated entry.
                tmp = self.path(prompt).with_suffix(".tmp")
                save_file(
                    {"prompt_embeds": found[prompt]},
                    str(tmp),
                    metadata={
                        "encoder": self.encoder_id,
                        "revision": str(self.revision),
                        "prompt": prompt,
                    },
                )
                tmp.replace(self.path(prompt))
        return [found[p] for p in prompts]


def encoder_placement(
    device: torch.device, dtype: torch.dtype, memory: MemoryPolicy
) -> tuple[bool, torch.dtype]:
    """(streamed, dtype) of the 7B text encoder (16 GB in bf16) on ``device``.

    Under an offloading memory policy on a GPU its weights wait in CPU memory and stream
    to the GPU one layer at a time, so a cache miss fits on a 16 GB card beside Isaac
    Sim. On a CPU it runs in bf16 whatever the transformer's dtype: 30 GB in fp32.
    """
    streamed = device.type != "cpu" and memory in ("model_offload", "group_offload")
    return streamed, torch.bfloat16 if device.type == "cpu" else dtype


class CosmosReasonEncoder:
    """Cosmos-Reason1 (Qwen2.5-VL) as Cosmos-Transfer2.5 reads it.

    The prompt goes through the chat template after a fixed system message; every
    layer's hidden states are standardised over features and concatenated, giving
    [B, L, layers * hidden] (28 * 3584 for the 7B model), which the transformer's own
    projection maps to 1024.
    """

    def __init__(self, model: Any, tokenizer: Any, device: torch.device | str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        # Where the inputs go: the GPU also when the weights wait in CPU memory (streamed).
        self.device = torch.device(device) if device is not None else None

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        device: torch.device | str,
        dtype: torch.dtype,
        memory: MemoryPolicy = "none",
    ) -> CosmosReasonEncoder:
        """Load from a pipeline folder with text_encoder/ and tokenizer/ (safetensors only),
        placed as :func:`encoder_placement` says for ``memory``."""
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        device = torch.device(device)
        streamed, dtype = encoder_placement(device, dtype, memory)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            folder, subfolder="text_encoder", torch_dtype=dtype, use_safetensors=True
        )
        if streamed:
            from diffusers.hooks import apply_group_offloading

            apply_group_offloading(
                model,
                onload_device=device,
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=1,
            )
        else:
            model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
        return cls(model.eval(), tokenizer, device)

    def token_ids(self, prompt: str, max_length: int) -> list[int]:
        """The chat-templated, padded or truncated ids of one prompt."""
        conversation = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ]
        ids = self.tokenizer.apply_chat_template(
            conversation,
            tokenize=True,
            add_generation_prompt=False,
            add_vision_id=False,
            max_length=max_length,
            truncation=True,
            padding="max_length",
        )
        # Tokenizers differ in returning a list or a BatchEncoding.
        return ids if isinstance(ids, list) else ids["input_ids"]

    @torch.no_grad()
    def encode(self, prompts: list[str], max_length: int) -> torch.Tensor:
        """-> [B, max_length, layers * hidden]"""
        device = self.device or next(self.model.parameters()).device
        ids = torch.tensor([self.token_ids(p, max_length) for p in prompts], device=device)
        hidden = self.model(ids, output_hidden_states=True).hidden_states
        # hidden[0] is the token embedding; the layers' outputs follow.
        standardised = [
            (h - h.mean(dim=-1, keepdim=True)) / (h.std(dim=-1, keepdim=True) + 1e-8)
            for h in hidden[1:]
        ]
        return torch.cat(standardised, dim=-1)


class HashTextEncoder:
    """A stand-in text encoder for the project's own (random or small) models: no download.

    Why it exists: the tiny and small presets have no text encoder, and Cosmos-Reason1
    is a 16 GB download made for the real model's 100k-wide embedding. So that a text
    prompt still reaches such models through the same PromptEmbeddingCache path as the
    real encoder's, each lower-cased word becomes a fixed random unit vector of the
    model's embedding width, seeded by the word's hash; positions past the prompt stay
    zero. Equal prompts give equal embeddings on every machine, different prompts
    different ones; the vectors mean nothing, so prompts steer nothing meaningful yet.
    """

    ENCODER_ID = "cosmos-transfer-bridge/hash-text-encoder-v1"

    def __init__(self, width: int):
        self.width = width

    def _word(self, word: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little") >> 1
        vector = torch.randn(self.width, generator=torch.Generator().manual_seed(seed))
        return vector / vector.norm()

    def encode(self, prompts: list[str], max_length: int) -> torch.Tensor:
        """-> [B, max_length, width]"""
        out = torch.zeros(len(prompts), max_length, self.width)
        for row, prompt in enumerate(prompts):
            words = re.findall(r"\w+|[^\w\s]", prompt.lower())[:max_length]
            for position, word in enumerate(words):
                out[row, position] = self._word(word)
        return out


def hash_prompt_cache(
    width: int, max_length: int = HASH_PROMPT_TOKENS, folder: Path | None = None
) -> PromptEmbeddingCache:
    """A PromptEmbeddingCache in front of :class:`HashTextEncoder` of ``width``."""
    return PromptEmbeddingCache(
        encoder_id=f"{HashTextEncoder.ENCODER_ID}/{width}",
        revision=None,
        max_length=max_length,
        load_encoder=lambda: HashTextEncoder(width),
        folder=folder,
    )
