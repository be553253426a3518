"""Memory policies for a GPU shared with Isaac Sim's renderer, chosen by one setting.

none:          every model on the GPU for the whole run (fastest).
model_offload: models wait in CPU memory; the VAE comes to the GPU to encode and
               decode, the transformer and its branches to denoise, never together.
group_offload: the transformer and branches stay in CPU memory and stream to the GPU
               one block at a time (diffusers' group offloading); the VAE stays on the GPU.
vae_tiling:    everything on the GPU, the VAE encoding and decoding in tiles.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

MemoryPolicy = Literal["none", "model_offload", "group_offload", "vae_tiling"]
MEMORY_POLICIES: tuple[str, ...] = get_args(MemoryPolicy)


class Placement:
    """Puts the models where ``policy`` wants them and moves them between phases."""

    def __init__(
        self,
        policy: MemoryPolicy,
        device: torch.device,
        vae: nn.Module,
        denoisers: list[nn.Module],
    ):
        if policy not in MEMORY_POLICIES:
            raise ValueError(f"memory policy {policy!r} is not one of {MEMORY_POLICIES}")
        self.policy, self.device = policy, device
        self.vae, self.denoisers = vae, denoisers
        if policy == "group_offload":
            for model in denoisers:
                model.enable_group_offload(
                    onload_device=device,
                    offload_device=torch.device("cpu"),
                    offload_type="block_level",
                    num_blocks_per_group=1,
                )
            vae.to(device)
        elif policy == "model_offload":
            for model in [vae, *denoisers]:
                model.to("cpu")
        else:
            for model in [vae, *denoisers]:
                model.to(device)
        if policy == "vae_tiling":
            vae.enable_tiling()

    def enter(self, phase: str) -> None:
        """Before a phase ("vae" or "denoise"): under model_offload, swap the GPU's models."""
        if self.policy != "model_offload":
            return
        leaving, coming = [self.vae], self.denoisers
        if phase == "vae":
            leaving, coming = coming, leaving
        for model in leaving:
            model.to("cpu")
        for model in coming:
            model.to(self.device)
