"""Multi-branch control fusion: weight maps on the token grid, weighted sums of branch residuals.

Cosmos-Transfer2.5 tokens are (t, h, w) row-major on frames/4 x H/16 x W/16: the Wan VAE
keeps pixel frame 0 as latent frame 0 and folds every following group of four frames
into one latent frame, shrinks space 8x, and the transformer patchifies 2x2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VAE_TEMPORAL = 4
TOKEN_STRIDE = 16  # 8x VAE * 2x2 patch


def latent_frames(num_frames: int) -> int:
    """Latent frames of a chunk of ``num_frames`` pixel frames (1 + 4k)."""
    return (num_frames - 1) // VAE_TEMPORAL + 1


def weights_to_tokens(weights: torch.Tensor) -> torch.Tensor:
    """Average a pixel weight map over the pixels each token covers.

    weights: [T, H, W] with T = 1 + 4k and H, W multiples of 16.
    Returns [T' * H/16 * W/16] float32 in token order. A map of ones stays exactly
    ones, and a token is non-zero only if one of its pixels is.
    """
    t, h, w = weights.shape
    if (t - 1) % VAE_TEMPORAL or h % TOKEN_STRIDE or w % TOKEN_STRIDE:
        raise ValueError(f"weight map shape {(t, h, w)} is not (1 + 4k, 16m, 16n)")
    # [T, H, W] -> [T, H/16, W/16]
    pooled = F.avg_pool2d(weights.float().unsqueeze(1), TOKEN_STRIDE).squeeze(1)
    # frame 0 alone, then groups of four: [T, h, w] -> [T', h, w]
    groups = pooled[1:].reshape(-1, VAE_TEMPORAL, *pooled.shape[1:]).mean(dim=1)
    return torch.cat([pooled[:1], groups]).flatten()


def normalise(token_weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Cosmos semantics at every token: w / max(sum of all branches' w, 1)."""
    total = torch.stack(token_weights).sum(dim=0).clamp(min=1.0)
    return [w / total for w in token_weights]


def accumulate(
    fused: list[torch.Tensor] | None, residuals: list[torch.Tensor], weight: torch.Tensor
) -> list[torch.Tensor]:
    """Add one branch's block residuals, scaled per token, to the fp32 running sums.

    residuals: per injection block [B, N, D]; weight: [N] float32; fused: the sums so far
    (None for the first branch). Summing in fp32 keeps several bf16 branches from
    losing each other's small contributions.
    """
    scale = weight.to(residuals[0].device)[None, :, None]  # [N] -> [1, N, 1]
    scaled = [r.float() * scale for r in residuals]
    if fused is None:
        return scaled
    return [f.add_(s) for f, s in zip(fused, scaled, strict=True)]
