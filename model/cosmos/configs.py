"""Named size presets and a builder of random models of diffusers' Cosmos-Transfer2.5 classes.

The real model (Cosmos-Transfer2.5-2B) is loaded from its checkpoint; these presets build
the same classes at toy sizes, as diffusers' own tests do, so the sampling loop, the
fusion and the benchmarks run on a CPU with no download. The "2b" preset is the real
model's architecture (random weights): build it under ``with torch.device("meta"):`` to
count parameters without allocating them, or under a CUDA device to benchmark it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from diffusers import (
    AutoencoderKLWan,
    CosmosControlNetModel,
    CosmosTransformer3DModel,
    UniPCMultistepScheduler,
)

from transfer_model.cosmos._compat import ensure_padding_mask_resize

# Wan2.1 VAE latent channels; the base transformer also reads the condition mask.
LATENT_CHANNELS = 16


@dataclass(frozen=True)
class ModelPreset:
    """Sizes of one random model: base transformer, control branches and VAE."""

    num_layers: int
    num_heads: int
    head_dim: int
    inject_every: int  # a branch block feeds base blocks 0, n, 2n, ... (7 in the 2B model)
    text_embed_dim: int
    mlp_ratio: float
    adaln_lora_dim: int
    vae_base_dim: int
    max_size: tuple[int, int, int]  # latent (T, H, W) the positional embeddings cover
    frames_per_chunk: int  # pixel frames, 1 + 4k
    img_context_dim: int | None = None  # image-context tokens, as in diffusers' Transfer tests
    # One entry per VAE stage; every stage but the last halves space (8x with four).
    vae_dim_mult: tuple[int, ...] = (1, 1, 1, 1)
    # Which of those downsampling stages also halve time (Wan2.1: the last two, 4x).
    vae_temporal_downsample: tuple[bool, ...] = (False, True, True)
    patch_size: tuple[int, int, int] = (1, 2, 2)  # latents (t, h, w) per transformer token
    # What the real-size "2b" preset needs; the defaults are what every toy preset had.
    vae_num_res_blocks: int = 1  # residual blocks per VAE stage (Wan2.1: 2)
    rope_scale: tuple[float, float, float] = (2.0, 1.0, 1.0)
    learnable_pos_embed: bool = True  # extra_pos_embed_type "learnable", else None
    img_context_num_tokens: int = 4
    # Width of the prompt embeddings when the models project them down to
    # text_embed_dim first (use_crossattn_projection); None: no projection.
    crossattn_proj_in_channels: int | None = None
    # The branch pads its control latents with zeros up to this minus 2 channels, then
    # adds the condition and padding masks (diffusers' CosmosControlNetModel).
    branch_in_channels: int = LATENT_CHANNELS + 2
    # Where the sampler's Karras schedule starts (flow sigma s / (1 + s)); the real
    # model's conversion script uses 200.
    sampler_sigma_max: float = 200.0

    @property
    def width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def num_branch_blocks(self) -> int:
        """One branch block per injection point."""
        return math.ceil(self.num_layers / self.inject_every)

    @property
    def prompt_embed_dim(self) -> int:
        """Width of the prompt embeddings the models take."""
        return self.crossattn_proj_in_channels or self.text_embed_dim

    def text_projection_kwargs(self) -> dict:
        """The cross-attention projection's arguments, only when there is one, so the
        toy presets' configs stay as they were."""
        if self.crossattn_proj_in_channels is None:
            return {}
        return {
            "use_crossattn_projection": True,
            "crossattn_proj_in_channels": self.crossattn_proj_in_channels,
            "encoder_hidden_states_channels": self.text_embed_dim,
        }


# The shipped default model (trained, see bridge_core/train): "small" narrowed to fit
# 30 MB in fp16 with four branches, up to 256x256.
_DEFAULT = ModelPreset(
    num_layers=8,
    num_heads=3,
    head_dim=64,
    inject_every=4,
    text_embed_dim=64,
    mlp_ratio=4.0,
    adaln_lora_dim=32,
    vae_base_dim=32,
    vae_dim_mult=(1, 1, 2, 2),
    max_size=(16, 32, 32),
    frames_per_chunk=9,
)

# "default" with a codec of 4x in space and none in time, a 4x4 patch keeping tokens
# 16 pixels wide (576 per 9-frame 128x128 chunk instead of 192). One CPU run of it
# (issue 13's note): the codec's round trip of held-out renders kept Edge F1 0.069
# (default: 0.024) at 27.6 dB, but the whole model's outputs only 0.011.
_CODEC4X = replace(
    _DEFAULT,
    vae_base_dim=16,
    vae_dim_mult=(1, 2, 4),
    vae_temporal_downsample=(False, False),
    patch_size=(1, 4, 4),
    max_size=(16, 64, 64),
)

# The CLI's and the benchmark's choices come from these keys.
MODEL_PRESETS: dict[str, ModelPreset] = {
    # diffusers' test sizes: a whole generation in well under a second on a CPU.
    "tiny": ModelPreset(
        num_layers=2,
        num_heads=2,
        head_dim=16,
        inject_every=1,
        text_embed_dim=32,
        mlp_ratio=2.0,
        adaln_lora_dim=4,
        vae_base_dim=3,
        max_size=(8, 32, 32),
        frames_per_chunk=5,
        img_context_dim=32,
    ),
    # The 2B layout (branch blocks feeding every n-th base block) at 8 blocks, 256 wide.
    "small": ModelPreset(
        num_layers=8,
        num_heads=4,
        head_dim=64,
        inject_every=2,
        text_embed_dim=64,
        mlp_ratio=4.0,
        adaln_lora_dim=32,
        vae_base_dim=8,
        max_size=(16, 64, 64),
        frames_per_chunk=9,
    ),
    "default": _DEFAULT,
    "codec4x": _CODEC4X,
    # "codec4x" sampled frame by frame: 1-frame chunks, 64 tokens each at 128x128, so a
    # CPU trains many more steps in its minutes; the VAE sees single frames only (no
    # temporal compression: frames do not share latents), and geometry comes from the
    # controls frame by frame.
    # It starts sampling at sigma 10 (flow 0.91): from 200, half of 12 steps lie above
    # flow 0.975, where it saw almost no training (logit-normal sigmas); held out, v3.2
    # before its last decoder phase kept Edge F1 0.206 and Blur SSIM 0.559 so, 0.201 and
    # 0.549 from 20.
    "frame4x": replace(_CODEC4X, max_size=(1, 64, 64), frames_per_chunk=1, sampler_sigma_max=10.0),
    # nvidia/Cosmos-Transfer2.5-2B at its published size, random weights (a checkpoint
    # supplies the real ones): diffusers' scripts/convert_cosmos_to_diffusers.py
    # (huggingface/diffusers 58eb52c), TRANSFORMER_CONFIGS["Cosmos-2.5-Transfer-General-2B"]
    # and CONTROLNET_CONFIGS["Cosmos-2.5-Transfer-General-2B"]; the VAE is the one that
    # script copies, Wan-AI/Wan2.1-T2V-1.3B-Diffusers vae/config.json (base_dim 96,
    # dim_mult [1, 2, 4, 4], num_res_blocks 2, temperal_downsample [false, true, true],
    # z_dim 16, no attn_scales: AutoencoderKLWan's defaults). 93 frames per chunk and
    # 1280x704 are Cosmos2_5_TransferPipeline's defaults.
    "2b": ModelPreset(
        num_layers=28,
        num_heads=16,
        head_dim=128,
        inject_every=7,  # controlnet_block_every_n; 4 branch blocks (n_controlnet_blocks)
        text_embed_dim=1024,
        mlp_ratio=4.0,
        adaln_lora_dim=256,
        vae_base_dim=96,
        vae_dim_mult=(1, 2, 4, 4),
        vae_temporal_downsample=(False, True, True),
        vae_num_res_blocks=2,
        max_size=(128, 240, 240),
        patch_size=(1, 2, 2),
        frames_per_chunk=93,
        img_context_dim=1152,  # img_context_dim_in; img_context_dim_out 2048 = width
        img_context_num_tokens=256,
        rope_scale=(1.0, 3.0, 3.0),
        learnable_pos_embed=False,  # extra_pos_embed_type None
        # Qwen2.5-VL-7B's hidden states of all 28 layers, concatenated (28 x 3584).
        crossattn_proj_in_channels=100352,
        branch_in_channels=130,
    ),
}


def flow_scheduler(sigma_max: float = 200.0) -> UniPCMultistepScheduler:
    """UniPC with flow sigmas, configured as diffusers' Cosmos conversion script does.

    The default UniPC config gives sigmas far above 1, which the flow-matching
    transformer was never trained on; Karras spacing between 200 and 0.01 mapped to
    flow sigmas keeps them in (0, 1].
    """
    return UniPCMultistepScheduler(
        use_karras_sigmas=True,
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        sigma_max=sigma_max,
        sigma_min=0.01,
    )


def build_transformer(preset: ModelPreset) -> CosmosTransformer3DModel:
    """A random base transformer of ``preset``'s size."""
    ensure_padding_mask_resize()
    return CosmosTransformer3DModel(
        in_channels=LATENT_CHANNELS + 1,
        out_channels=LATENT_CHANNELS,
        num_attention_heads=preset.num_heads,
        attention_head_dim=preset.head_dim,
        num_layers=preset.num_layers,
        mlp_ratio=preset.mlp_ratio,
        text_embed_dim=preset.text_embed_dim,
        adaln_lora_dim=preset.adaln_lora_dim,
        max_size=preset.max_size,
        patch_size=preset.patch_size,
        rope_scale=preset.rope_scale,
        concat_padding_mask=True,
        extra_pos_embed_type="learnable" if preset.learnable_pos_embed else None,
        controlnet_block_every_n=preset.inject_every,
        img_context_dim_in=preset.img_context_dim,
        img_context_num_tokens=preset.img_context_num_tokens,
        img_context_dim_out=preset.width,
        **preset.text_projection_kwargs(),
    )


def build_branch(preset: ModelPreset, zero_init: bool = True) -> CosmosControlNetModel:
    """A control branch of ``preset``'s size.

    ``zero_init`` zeroes the branch's input and output projections, as a new branch
    must start: its residuals are then exactly 0 and the base model is unchanged until
    training moves them. diffusers does not do this; tests that need a branch with an
    effect pass ``zero_init=False``.
    """
    ensure_padding_mask_resize()
    branch = CosmosControlNetModel(
        n_controlnet_blocks=preset.num_branch_blocks,
        # control latents (zero-padded to in_channels - 2) + condition mask + padding mask
        in_channels=preset.branch_in_channels,
        latent_channels=LATENT_CHANNELS + 2,
        model_channels=preset.width,
        num_attention_heads=preset.num_heads,
        attention_head_dim=preset.head_dim,
        mlp_ratio=preset.mlp_ratio,
        text_embed_dim=preset.text_embed_dim,
        adaln_lora_dim=preset.adaln_lora_dim,
        patch_size=preset.patch_size,
        max_size=preset.max_size,
        rope_scale=preset.rope_scale,
        extra_pos_embed_type="learnable" if preset.learnable_pos_embed else None,
        img_context_dim_in=preset.img_context_dim,
        img_context_dim_out=preset.width,
        **preset.text_projection_kwargs(),
    )
    if zero_init:
        with torch.no_grad():
            for block in branch.control_blocks:
                for proj in (block.before_proj, block.after_proj):
                    if proj is not None:
                        proj.weight.zero_()
                        proj.bias.zero_()
    return branch


def build_vae(preset: ModelPreset) -> AutoencoderKLWan:
    """A random Wan VAE with ``preset``'s compression (Wan2.1's: 4x time, 8x space) and
    16 latent channels; its config's scale factors say the same."""
    downsample = list(preset.vae_temporal_downsample)
    if len(downsample) != len(preset.vae_dim_mult) - 1:
        raise ValueError(
            f"vae_temporal_downsample {downsample} needs one entry per downsampling stage "
            f"({len(preset.vae_dim_mult) - 1} for vae_dim_mult {preset.vae_dim_mult})"
        )
    return AutoencoderKLWan(
        base_dim=preset.vae_base_dim,
        z_dim=LATENT_CHANNELS,
        dim_mult=list(preset.vae_dim_mult),
        num_res_blocks=preset.vae_num_res_blocks,
        temperal_downsample=downsample,
        scale_factor_temporal=2 ** sum(downsample),
        scale_factor_spatial=2 ** len(downsample),
    )
