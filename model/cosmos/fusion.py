"""Multi-branch control fusion: weight maps on the token grid, weighted sums of branch residuals.

How pixels become tokens is read from the loaded models, never assumed: the Wan VAE keeps
pixel frame 0 as latent frame 0 and folds every following group of ``temporal`` frames
into one latent frame (4 in Cosmos-Transfer2.5), shrinks space ``spatial`` times (8 there),
and the transformer patchifies ``patch`` latents (1x2x2 there). Tokens are (t, h, w)
row-major on that grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# AutoencoderKLWan encodes frame 0 alone, then groups of four frames, whatever its
# temporal compression (frames past the last whole group are dropped), so chunks are
# 1 + 4k frames long.
ENCODER_FRAME_GROUP = 4


@dataclass(frozen=True)
class TokenGrid:
    """Compression from pixels to latents (the VAE's) and from latents to tokens (the
    transformer's patch).

    temporal: pixel frames per latent frame after the first; spatial: pixels per latent
    pixel along each side; patch: latents (t, h, w) per token.
    """

    temporal: int
    spatial: int
    patch: tuple[int, int, int]

    @classmethod
    def of(cls, vae: torch.nn.Module, transformer: torch.nn.Module) -> TokenGrid:
        """Read from an AutoencoderKLWan and a Cosmos transformer or control branch, as
        diffusers' Cosmos pipelines read the VAE: every encoder stage halves space, the
        stages flagged in ``temperal_downsample`` also halve time, and a VAE patch
        (Wan2.2) multiplies the spatial factor."""
        downsample = list(vae.config.temperal_downsample)
        vae_patch = vae.config.get("patch_size") or 1
        return cls(
            temporal=2 ** sum(bool(d) for d in downsample),
            spatial=2 ** len(downsample) * vae_patch,
            patch=tuple(int(p) for p in transformer.config.patch_size),
        )

    @property
    def stride(self) -> tuple[int, int]:
        """Pixels (H, W) one token covers in a frame."""
        return self.spatial * self.patch[1], self.spatial * self.patch[2]

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames of a chunk of ``num_frames`` pixel frames (1 + 4k)."""
        return (num_frames - 1) // self.temporal + 1

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent (h, w) of a frame of ``height`` x ``width`` pixels."""
        return height // self.spatial, width // self.spatial

    def cond_latent_frames(self, num_cond_frames: int) -> int:
        """Latent frames that hold ``num_cond_frames`` conditioning pixel frames
        (0 -> 0; with 4x temporal compression 1..4 -> 1, 5..8 -> 2 ...)."""
        return 0 if num_cond_frames <= 0 else (num_cond_frames - 1) // self.temporal + 1

    def num_tokens(self, num_frames: int, height: int, width: int) -> int:
        """Tokens of a chunk of ``num_frames`` frames of ``height`` x ``width`` pixels."""
        sh, sw = self.stride
        return self.latent_frames(num_frames) // self.patch[0] * (height // sh) * (width // sw)


def weights_to_tokens(weights: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Average a pixel weight map over the pixels each token covers.

    weights: [T, H, W] with T = 1 + 4k and H, W multiples of ``grid.stride``.
    Returns [N_tokens] float32 in token order. A map of ones stays exactly ones, and a
    token is non-zero only if one of its pixels is.
    """
    t, h, w = weights.shape
    sh, sw = grid.stride
    latent_t = grid.latent_frames(t)
    if (t - 1) % ENCODER_FRAME_GROUP or h % sh or w % sw or latent_t % grid.patch[0]:
        raise ValueError(
            f"weight map shape {(t, h, w)} is not (1 + 4k, {sh}m, {sw}n) frames and pixels"
        )
    # [T, H, W] -> [T, H/sh, W/sw]
    pooled = F.avg_pool2d(weights.float().unsqueeze(1), (sh, sw)).squeeze(1)
    # frame 0 alone, then groups of ``temporal`` frames: [T, h, w] -> [T', h, w]
    groups = pooled[1:].reshape(-1, grid.temporal, *pooled.shape[1:]).mean(dim=1)
    latent = torch.cat([pooled[:1], groups])
    # groups of patch[0] latent frames per token: [T', h, w] -> [T'/p, h, w]
    return latent.reshape(-1, grid.patch[0], *latent.shape[1:]).mean(dim=1).flatten()


def normalise(token_weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Cosmos semantics at every token: w / max(sum of all branches' w, 1)."""
    total = torch.stack(token_weights).sum(dim=0).clamp(min=1.0)
    return [w / total for w in token_weights]


def accumulate(
    fused: list[torch.Tensor] | None, residuals: list[torch.Tensor], weight: torch.Tensor
) -> list[torch.Tensor]:
    """Add one branch's block residuals, scaled per token, to the fp32 running sums.

    residuals: per injection block [B, N, D]; weight: [N] float32, or [B, N] for a map per
    sample; fused: the sums so far (None for the first branch). Summing in fp32 keeps
    several bf16 branches from losing each other's small contributions.
    """
    scale = weight.to(residuals[0].device, torch.float32)
    scale = (scale if scale.ndim == 2 else scale[None])[:, :, None]  # -> [B or 1, N, 1]
    if fused is None:
        fused = [torch.zeros(r.shape, dtype=torch.float32, device=r.device) for r in residuals]
    # In place, one block at a time: at 720p x 93 frames one block's residual is 330 MB in
    # bf16, so fp32 copies of every block at once would cost gigabytes.
    for f, r in zip(fused, residuals, strict=True):
        f.addcmul_(r, scale)
    return fused


def to_base_dtype(fused: list[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
    """The fp32 sums as ``dtype`` for the base model, replaced block by block in ``fused``
    itself, so the fp32 and the cast copy of every block are never alive together."""
    for i, f in enumerate(fused):
        fused[i] = f.to(dtype)
    return fused
