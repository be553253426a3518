"""The multi-branch sampling loop over diffusers' Cosmos-Transfer2.5 classes.

With one branch and a weight map of ones this is Cosmos2_5_TransferPipeline's loop,
random draws and all, so its output matches the pipeline's bit for bit (see the
equivalence tests). What it adds: several branches per step, each scaled by its own
map on the token grid of the chunk, summed in fp32, and branches whose map is zero in
a chunk skip their forwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import (
    AutoencoderKLWan,
    CosmosControlNetModel,
    CosmosTransformer3DModel,
    SchedulerMixin,
)
from diffusers.utils.torch_utils import randn_tensor

from transfer_model.cosmos import fusion

MIN_CHUNK_FRAMES = fusion.ENCODER_FRAME_GROUP + 1
# The reference gives conditioning frames this fixed noise level.
CONDITIONAL_SIGMA = 0.1
# A prompt's context: its embeddings, with Transfer2.5's (all-zero) image context if any.
Context = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclass
class Branch:
    """One control branch and its inputs for the whole clip.

    video:   [1, 3, T, H, W] in [-1, 1]
    weights: [T, H, W] >= 0, per pixel
    """

    name: str
    model: CosmosControlNetModel
    video: torch.Tensor
    weights: torch.Tensor


@dataclass
class SampleResult:
    """video: [1, 3, T, H, W] in [-1, 1]; latents: [1, C, T_latent, h, w] on the VAE's grid,
    chunks joined."""

    video: torch.Tensor
    latents: torch.Tensor


def _fit_frames(x: torch.Tensor, num_frames: int, dim: int) -> torch.Tensor:
    """Trim ``x`` along ``dim`` to ``num_frames`` or pad it by repeating its last frame."""
    missing = num_frames - x.shape[dim]
    if missing <= 0:
        return x.narrow(dim, 0, num_frames)
    last = x.narrow(dim, x.shape[dim] - 1, 1)
    return torch.cat([x, *([last] * missing)], dim=dim)


def min_chunk_frames(grid: fusion.TokenGrid, frames_per_chunk: int) -> int:
    """The chunk length sampled: at least one frame group where the VAE compresses time
    (its first latent frame holds one frame, the next ones four), else as given."""
    return max(frames_per_chunk, MIN_CHUNK_FRAMES) if grid.temporal > 1 else frames_per_chunk


def chunk_spans(num_frames: int, frames_per_chunk: int, num_cond: int) -> list[tuple[int, int]]:
    """(start, end) pixel frames of each chunk; each after the first re-generates ``num_cond``."""
    stride = frames_per_chunk - num_cond
    return [
        (start, min(start + frames_per_chunk, num_frames))
        for start in range(0, num_frames - num_cond, stride)
    ]


def _velocity(
    transformer: CosmosTransformer3DModel,
    active: list[tuple[CosmosControlNetModel, torch.Tensor, torch.Tensor]],
    context: Context,
    in_latents: torch.Tensor,
    in_timestep: torch.Tensor,
    cond_mask: torch.Tensor,
    padding_mask: torch.Tensor,
    gt_velocity: torch.Tensor,
) -> torch.Tensor:
    """One guidance side: every active branch, their weighted residuals fused, the base model.

    active: (branch, control latents [1, 16, T', h, w], token weights [N]) per branch.
    Returns the velocity [1, 16, T', h, w].
    """
    fused = None
    for branch, control_latent, weight in active:
        residuals = branch(
            controls_latents=control_latent,
            latents=in_latents,
            timestep=in_timestep,
            encoder_hidden_states=context,
            condition_mask=cond_mask,
            padding_mask=padding_mask,
            return_dict=False,
        )[0]
        fused = fusion.accumulate(fused, residuals, weight)
    base_residuals = None if fused is None else fusion.to_base_dtype(fused, transformer.dtype)
    out = transformer(
        hidden_states=in_latents,
        timestep=in_timestep,
        encoder_hidden_states=context,
        block_controlnet_hidden_states=base_residuals,
        condition_mask=cond_mask,
        padding_mask=padding_mask,
        return_dict=False,
    )[0]
    # Conditioning frames move along their known velocity, not the model's.
    return gt_velocity + out * (1 - cond_mask)


def _two_contexts(
    context: torch.Tensor | tuple[torch.Tensor, ...],
    negative: torch.Tensor | tuple[torch.Tensor, ...],
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """The guided and unguided contexts as one batch of two (each part, for a tuple)."""
    if isinstance(context, tuple):
        return tuple(torch.cat([c, n]) for c, n in zip(context, negative, strict=True))
    return torch.cat([context, negative])


def _twice(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each [B, ...] tensor as a batch of 2B, itself twice (views, no copies, when B is 1)."""
    return tuple(t.unsqueeze(0).expand(2, *t.shape).flatten(0, 1) for t in tensors)


def _noop_phase(phase: str) -> None:
    """Default for ``on_phase``: every model stays where it is."""


def prompt_contexts(
    transformer: CosmosTransformer3DModel,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    device: torch.device,
) -> tuple[Context, Context | None]:
    """The transformer's contexts for [B, L, D] prompt embeddings and their negatives
    (None: no guidance pass), on ``device`` in its dtype."""
    t_dtype = transformer.dtype
    context = prompt_embeds.to(device, t_dtype)
    negative = (
        None if negative_prompt_embeds is None else negative_prompt_embeds.to(device, t_dtype)
    )
    if not transformer.config.img_context_dim_in:
        return context, negative
    # Transfer2.5 takes no reference image: its image context is all zeros.
    image_context = torch.zeros(
        context.shape[0],
        transformer.config.img_context_num_tokens,
        transformer.config.img_context_dim_in,
        device=device,
        dtype=t_dtype,
    )
    return (context, image_context), None if negative is None else (negative, image_context)


@torch.no_grad()
def denoise(
    transformer: CosmosTransformer3DModel,
    scheduler: SchedulerMixin,
    active: list[tuple[CosmosControlNetModel, torch.Tensor, torch.Tensor]],
    contexts: tuple[Context, Context | None],
    noise: torch.Tensor,
    cond_latent: torch.Tensor,
    cond_indicator: torch.Tensor,
    padding_mask: torch.Tensor,
    num_steps: int,
    guidance: float,
    batch_guidance: bool = True,
    sigmas: list[float] | None = None,
    guide_controls: bool = False,
) -> torch.Tensor:
    """Integrate a batch from ``noise`` to clean latents, steered by the ``active`` branches.

    noise / cond_latent: [B, 16, T', h, w]; the latent frames flagged in ``cond_indicator``
    [B, 1, T', 1, 1] hold ``cond_latent`` at the reference's fixed noise level throughout.
    active: (branch, control latents [B, 16, T', h, w], token weights [N] or [B, N]).
    contexts: the prompt's context and the negative one (None: no guidance pass).
    sigmas: the noise levels to step through (a distilled student's, on a flow-matching
    Euler scheduler); None: the scheduler's own ``num_steps``.
    guide_controls: the unguided pass runs without the branches, so guidance pushes the
    prediction towards the controls as well as the prompt (passes not batched).
    """
    context, negative_context = contexts
    unguided = [] if guide_controls else active
    t_dtype = transformer.dtype
    device = noise.device
    cond_mask = (cond_indicator * torch.ones_like(noise[:, :1])).to(t_dtype)
    cond_timestep = torch.ones_like(cond_indicator) * CONDITIONAL_SIGMA
    if sigmas is None:
        scheduler.set_timesteps(num_steps, device=device)
    else:
        scheduler.set_timesteps(sigmas=sigmas, device=device)
    latents = noise
    gt_velocity = (latents - cond_latent) * cond_mask
    for i, t in enumerate(scheduler.timesteps):
        sigma = torch.tensor(scheduler.sigmas[i].item()).unsqueeze(0).to(device, t_dtype)
        in_latents = (cond_mask * cond_latent + (1 - cond_mask) * latents).to(t_dtype)
        in_timestep = cond_indicator * cond_timestep + (1 - cond_indicator) * sigma
        step = (in_latents, in_timestep, cond_mask, padding_mask, gt_velocity)
        if negative_context is not None and batch_guidance and not guide_controls:
            both = [
                (model, *_twice(latent), weight if weight.ndim == 1 else _twice(weight)[0])
                for model, latent, weight in active
            ]
            # The padding mask stays one: the models repeat it over the batch.
            v, v_uncond = _velocity(
                transformer,
                both,
                _two_contexts(context, negative_context),
                *_twice(in_latents, in_timestep, cond_mask),
                padding_mask,
                _twice(gt_velocity)[0],
            ).chunk(2)
            v = v + guidance * (v - v_uncond)
        else:
            v = _velocity(transformer, active, context, *step)
            if negative_context is not None:
                v_uncond = _velocity(transformer, unguided, negative_context, *step)
                v = v + guidance * (v - v_uncond)
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
    return latents


@torch.no_grad()
def sample(
    transformer: CosmosTransformer3DModel,
    vae: AutoencoderKLWan,
    scheduler: SchedulerMixin,
    branches: list[Branch],
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    generator: torch.Generator,
    num_steps: int,
    guidance: float,
    frames_per_chunk: int,
    num_cond_frames: int = 1,
    device: torch.device | str = "cpu",
    on_phase: Callable[[str], None] = _noop_phase,
    batch_guidance: bool = True,
    sigmas: list[float] | None = None,
    guide_controls: bool = False,
) -> SampleResult:
    """Generate a clip steered by ``branches``, chunk by chunk.

    prompt_embeds / negative_prompt_embeds: [1, L, D]. The negative pass runs when
    guidance > 0 (v = v_cond + g (v_cond - v_uncond)). ``generator`` must be a CPU
    generator; it draws, per chunk and in this order, the initial noise, the VAE sample
    of the conditioning video and one control-latent sample; chunks without conditioning
    frames repeat the first chunk's draws. Every branch encodes its
    control with its own generator started from that last draw's state, so which
    branches run, or are skipped, never moves the stream of later chunks. ``on_phase``
    is told "vae" or "denoise" before each phase, so a memory policy can move models.
    ``batch_guidance``: the guided and unguided passes run as one batch of two (one
    forward of each model per step; twice the activations), else one after the other.
    ``sigmas``: a distilled student's noise levels, ``guide_controls``: the unguided pass
    without the branches (both: see :func:`denoise`).
    """
    device = torch.device(device)
    t_dtype, v_dtype = transformer.dtype, vae.dtype
    video_frames = branches[0].video.shape[2]
    height, width = branches[0].video.shape[-2:]
    # The compression comes from the models themselves (8x8x4 for Transfer2.5's Wan VAE).
    grid = fusion.TokenGrid.of(vae, transformer)
    frames_per_chunk = min_chunk_frames(grid, frames_per_chunk)
    num_cond_frames = min(num_cond_frames, frames_per_chunk - 1)
    num_cond_latents = grid.cond_latent_frames(num_cond_frames)
    latent_t = grid.latent_frames(frames_per_chunk)
    latent_shape = (
        1,
        transformer.config.out_channels,
        latent_t,
        *grid.latent_size(height, width),
    )

    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1)
    mean_v, std_v = mean.to(device, v_dtype), std.to(device, v_dtype)
    mean_f, std_f = mean.to(device, torch.float32), std.to(device, torch.float32)

    negative = negative_prompt_embeds if guidance > 0 else None
    context, negative_context = prompt_contexts(transformer, prompt_embeds, negative, device)

    def encode(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return vae.encode(video.to(device, v_dtype)).latent_dist.sample(gen)

    videos, latent_chunks = [], []
    spans = chunk_spans(video_frames, frames_per_chunk, num_cond_frames)
    for chunk_idx, (start, end) in enumerate(spans):
        on_phase("vae")
        # 1. Conditioning video: black for the first chunk; then the previous chunk's
        #    last frames in front of -1 (black), re-encoded, as the reference does.
        if chunk_idx == 0:
            cond_video = torch.full((1, 3, frames_per_chunk, height, width), -1.0, dtype=v_dtype)
            chunk_cond = 0
        else:
            cond_video = torch.full_like(videos[-1], -1.0)
            if num_cond_frames > 0:
                cond_video[:, :, :num_cond_frames] = videos[-1][:, :, -num_cond_frames:]
            chunk_cond = num_cond_latents

        # 2. Random draws, in the pipeline's order: noise, conditioning sample, control sample.
        #    Chunks that carry no frame of the one before repeat the first chunk's draws:
        #    each drawing its own makes a frame-by-frame model flicker.
        if chunk_idx == 0:
            first_draws = generator.get_state()
        elif num_cond_frames == 0:
            generator.set_state(first_draws)
        noise = randn_tensor(latent_shape, generator=generator, device=device, dtype=torch.float32)
        cond_latent = (encode(cond_video, generator).float() - mean_f) / std_f
        branch_state = generator.get_state()
        randn_tensor(latent_shape, generator=generator, device=device, dtype=v_dtype)

        # 3. Which latent frames are conditioning ones: [1, 1, T', 1, 1].
        cond_indicator = torch.zeros(1, 1, latent_t, 1, 1, device=device)
        cond_indicator[:, :, :chunk_cond] = 1.0
        padding_mask = torch.zeros(1, 1, height, width, device=device, dtype=t_dtype)

        # 4. Branch inputs: token weights (normalised across branches), then control
        #    latents for the branches whose weights are not all zero in this chunk.
        token_weights = fusion.normalise(
            [
                fusion.weights_to_tokens(
                    _fit_frames(b.weights[start:end], frames_per_chunk, 0), grid
                )
                for b in branches
            ]
        )
        active = []
        for branch, weight in zip(branches, token_weights, strict=True):
            if not torch.any(weight):
                continue
            control = _fit_frames(branch.video[:, :, start:end], frames_per_chunk, 2)
            branch_gen = torch.Generator().set_state(branch_state)
            # Normalised in fp32, then cast: the VAE may be fp32 beside a bf16 transformer
            # (diffusers saves the Wan VAE so), and the branches take their own dtype.
            control_latent = ((encode(control, branch_gen).float() - mean_f) / std_f).to(t_dtype)
            active.append((branch.model, control_latent, weight.to(device)))

        # 5. Denoise.
        on_phase("denoise")
        latents = denoise(
            transformer,
            scheduler,
            active,
            (context, negative_context),
            noise,
            cond_latent,
            cond_indicator,
            padding_mask,
            num_steps,
            guidance,
            batch_guidance,
            sigmas,
            guide_controls,
        )

        # 6. Decode the whole chunk: the next chunk is conditioned on its pixels.
        on_phase("vae")
        decoded = vae.decode((latents * std_v + mean_v).to(v_dtype), return_dict=False)[0]
        videos.append(decoded.cpu())
        latent_chunks.append(latents.cpu())

    # Later chunks start with frames the previous chunk already gave.
    video = torch.cat([videos[0], *(v[:, :, num_cond_frames:] for v in videos[1:])], dim=2)
    latents = torch.cat(
        [latent_chunks[0], *(c[:, :, num_cond_latents:] for c in latent_chunks[1:])], dim=2
    )
    return SampleResult(
        video=video[:, :, :video_frames],
        latents=latents[:, :, : grid.latent_frames(video_frames)],
    )
