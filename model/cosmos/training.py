"""Training the project's own small Transfer model, in the reference's order.

1. The Wan VAE learns to reconstruct target frames and control videos (the branches
   read controls through the same VAE, so it must keep edges and label boundaries).
2. The base transformer learns flow matching on target latents, prompt-conditioned,
   sometimes with a clean first latent frame as the sampler gives later chunks.
3. The control branches learn with the base frozen. Each step a random subset of
   branches is active, fused with the sampler's own weights (w / max(sum w, 1)), so
   the uniform mixes used at inference are what the branches were trained in.

Everything here takes tensors; reading renders and building controls is the caller's.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan, CosmosControlNetModel, CosmosTransformer3DModel

from transfer_model.cosmos import configs, fusion
from transfer_model.cosmos.checkpoint import Checkpointer, History, Randoms
from transfer_model.cosmos.configs import ModelPreset
from transfer_model.cosmos.model import CosmosTransferModel, frames_to_uint8
from transfer_model.cosmos.prompts import hash_prompt_cache
from transfer_model.cosmos.sampling import CONDITIONAL_SIGMA, Context


@dataclass
class ClipSet:
    """Training clips as they come off disk: uint8, channel-last.

    targets:       [N, T, H, W, 3] rendered frames
    controls:      control name -> [M, T, H, W, 3], one clip per scene view
    scene:         [N] index of target i's controls along their first axis
    prompt:        [N] index of target i's prompt in prompt_embeds
    prompt_embeds: [P, L, D] float32
    null_embed:    [L, D] what a dropped prompt becomes (the negative prompt's embedding,
                   so classifier-free guidance against it is guidance against "no prompt")
    """

    targets: np.ndarray
    controls: dict[str, np.ndarray]
    scene: np.ndarray
    prompt: np.ndarray
    prompt_embeds: torch.Tensor
    null_embed: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class Schedule:
    """Steps, batch sizes and learning rates of the three phases."""

    vae_steps: int = 2000
    vae_batch: int = 24  # frames per VAE step (crops x frames each)
    vae_crop: int = 64
    vae_lr: float = 1e-3
    base_steps: int = 4000
    branch_steps: int = 3000
    decoder_steps: int = 0
    # Most noise (in latent stds, drawn uniformly per sample) added to the decoder's
    # latents: sampled latents are never exactly the encoder's.
    decoder_latent_noise: float = 0.0
    batch: int = 32
    lr: float = 4e-4
    prompt_dropout: float = 0.1
    cond_frame_rate: float = 0.25  # share of samples with a clean first latent frame
    # The branch phase's learning rate for the base, as a share of ``lr``: 0 keeps the
    # base frozen (the reference's recipe); above 0 the base learns to use the branches.
    branch_base_lr: float = 0.0
    # Where the flow phases draw their noise levels: "logit-normal" (SD3's, centred on
    # sigma 0.5: 1.4% of draws above 0.9), or "sampler": where the reference's sampler
    # schedule places its steps (about half above 0.9, where the layout is decided).
    sigma_draw: str = "logit-normal"
    seed: int = 0


Log = Callable[[str, int, int, float], None]  # (phase, step, steps, loss)


def _no_log(phase: str, step: int, steps: int, loss: float) -> None:
    """Default for ``log``: say nothing."""


def to_video(clips: np.ndarray, device: torch.device) -> torch.Tensor:
    """[B, T, H, W, 3] uint8 -> [B, 3, T, H, W] float32 in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(clips)).to(device)
    return x.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


@torch.no_grad()
def round_trip(
    vae: AutoencoderKLWan, clips: np.ndarray, frames_per_chunk: int | None = None
) -> np.ndarray:
    """[B, T, H, W, 3] uint8 encoded (posterior mean) and decoded again: what the codec
    alone keeps of a clip, the most any model built on it can give back. Encoded in
    chunks of ``frames_per_chunk`` frames (default: the whole clip), as the sampler
    encodes them: a codec trained on single frames never sees a longer clip."""
    x = to_video(clips, vae.device).to(vae.dtype)
    step = frames_per_chunk or x.shape[2]
    chunks = [x[:, :, t : t + step] for t in range(0, x.shape[2], step)]
    decoded = torch.cat(
        [vae.decode(vae.encode(c).latent_dist.mean).sample for c in chunks], dim=2
    ).cpu()
    # Converted as the model converts its outputs, so the two compare like for like.
    return np.stack([frames_to_uint8(video[None]) for video in decoded])


def _cosine_lr(step: int, steps: int, lr: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class Phase:
    """One training phase's bookkeeping: its name, its random streams (which ``loss_at``
    draws from), the history it adds to, and where it checkpoints (None: nowhere)."""

    name: str
    randoms: Randoms
    history: History
    log: Log
    checkpoint: Checkpointer | None = None


def optimise(
    params: list[torch.nn.Parameter],
    steps: int,
    lr: float,
    loss_at: Callable[[int], torch.Tensor],
    phase: Phase,
    slow: tuple[list[torch.nn.Parameter], float] | None = None,
) -> None:
    """AdamW over ``params`` for ``steps`` steps of ``loss_at(step)``, recorded in the
    phase's history; ``slow`` (parameters, share of ``lr``) learns alongside at a lower
    rate. With a checkpointer it saves every few minutes and at the end, and a phase the
    checkpoint stopped in goes on from its step with its optimiser moments and random
    streams, so a resumed run takes the steps an unbroken one would."""
    groups = [{"params": params, "scale": 1.0}]
    if slow and slow[0]:
        groups.append({"params": slow[0], "scale": slow[1]})
    every = [p for group in groups for p in group["params"]]
    optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    checkpoint, history, name = phase.checkpoint, phase.history, phase.name
    first = checkpoint.restore_phase(name, optimiser, phase.randoms) if checkpoint else 0
    losses = history.losses.setdefault(name, [])
    del losses[first:]
    spent, start = history.seconds.get(name, 0.0), time.perf_counter()
    for step in range(first, steps):
        for group in optimiser.param_groups:
            group["lr"] = group["scale"] * _cosine_lr(step, steps, lr)
        loss = loss_at(step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(every, 1.0)
        optimiser.step()
        losses.append(loss.item())
        phase.log(name, step + 1, steps, losses[-1])
        if checkpoint is not None and step + 1 < steps and checkpoint.due():
            history.seconds[name] = spent + time.perf_counter() - start
            checkpoint.save(history, name, step + 1, optimiser, phase.randoms)
    history.seconds[name] = spent + time.perf_counter() - start
    history.done.append(name)
    if checkpoint is not None:
        checkpoint.save(history)


def cut_frames(videos: np.ndarray, frames: int) -> np.ndarray:
    """[N, T, ...] -> [N * (T // frames), frames, ...]: each clip cut into whole pieces,
    clip i's pieces at rows i * pieces ... (i + 1) * pieces - 1."""
    n, t = videos.shape[:2]
    pieces = t // frames
    return videos[:, : pieces * frames].reshape(n * pieces, frames, *videos.shape[2:])


def split_frames(clips: ClipSet, frames: int) -> ClipSet:
    """Clips cut into clips of ``frames`` frames (a model of shorter chunks than the
    renders learns on its own chunk length); what indexes a clip is repeated to match."""
    t = clips.targets.shape[1]
    if frames >= t:
        return clips
    pieces = t // frames

    # Target (i, piece p) is steered by controls (scene[i], piece p).
    scene = (clips.scene[:, None] * pieces + np.arange(pieces)[None]).reshape(-1)
    return ClipSet(
        cut_frames(clips.targets, frames),
        {name: cut_frames(video, frames) for name, video in clips.controls.items()},
        scene,
        np.repeat(clips.prompt, pieces),
        clips.prompt_embeds,
        clips.null_embed,
    )


def _vae_clips(clips: ClipSet) -> list[np.ndarray]:
    """Every video the VAE will see: targets and each control, [K, T, H, W, 3]."""
    return [clips.targets, *clips.controls.values()]


def _crop(clips: ClipSet, schedule: Schedule) -> int:
    """The VAE phases' crop side: the schedule's, or the frame's if that is smaller."""
    return min(schedule.vae_crop, *clips.targets.shape[2:4])


def vae_batch_size(frames_per_step: int, frames: int) -> int:
    """Crops of ``frames`` frames in a VAE step of about ``frames_per_step`` frames, so a
    step costs about the same whatever its clip length."""
    return max(1, round(frames_per_step / frames))


def _vae_batch(
    sources: list[np.ndarray], batch: int, frames: int, crop: int, rng: np.random.Generator
) -> np.ndarray:
    """[B, frames, crop, crop, 3] uint8 crops; even rows from sources[0] (the targets), odd
    rows from a random other source (a control), or from sources[0] too if it is alone."""
    picks = []
    for i in range(batch):
        others = len(sources) - 1
        source = sources[0] if i % 2 == 0 or not others else sources[1 + rng.integers(others)]
        clip = source[rng.integers(len(source))]
        t = rng.integers(clip.shape[0] - frames + 1)
        y = rng.integers(clip.shape[1] - crop + 1)
        x = rng.integers(clip.shape[2] - crop + 1)
        picks.append(clip[t : t + frames, y : y + crop, x : x + crop])
    return np.stack(picks)


def _reconstruction_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 of pixels plus L1 of horizontal and vertical differences (keeps edges sharp)."""
    grads = sum((torch.diff(recon, dim=d) - torch.diff(x, dim=d)).abs().mean() for d in (-1, -2))
    return (recon - x).abs().mean() + grads


def train_vae(
    vae: AutoencoderKLWan,
    clips: ClipSet,
    schedule: Schedule,
    device: torch.device,
    history: History,
    log: Log = _no_log,
    checkpoint: Checkpointer | None = None,
) -> None:
    """Reconstruction with a light KL, on random crops.

    The VAE is convolutional, so crops of ``schedule.vae_crop`` pixels teach it as whole
    frames do at a fraction of the cost. Steps cycle through 1, 5 and 9 frames: the
    first-frame path and one and two 4-frame groups (a 9-frame chunk's third latent
    frame decodes through the causal cache of the first two), with as many crops as
    make about ``schedule.vae_batch`` frames. Half of each batch is targets, half
    controls, so thin edges and label boundaries survive the downsampling the branches
    see them through.
    """
    phase = Phase("vae", Randoms.seeded(schedule.seed), history, log, checkpoint)
    sources, crop = _vae_clips(clips), _crop(clips, schedule)
    vae.to(device).train()

    # Clip lengths 1, 5, 9 where the clips are that long (a 1-frame model sees 1 only).
    lengths = [n for n in (1, 5, 9) if n <= clips.targets.shape[1]]

    def loss_at(step: int) -> torch.Tensor:
        frames = lengths[step % len(lengths)]
        batch = vae_batch_size(schedule.vae_batch, frames)
        x = to_video(_vae_batch(sources, batch, frames, crop, phase.randoms.rng), device)
        posterior = vae.encode(x).latent_dist
        kl = posterior.kl().mean() / x[0].numel()
        recon = vae.decode(posterior.sample(phase.randoms.generator)).sample
        return _reconstruction_loss(recon, x) + 1e-4 * kl

    optimise(list(vae.parameters()), schedule.vae_steps, schedule.vae_lr, loss_at, phase)
    vae.eval()


def train_decoder(
    vae: AutoencoderKLWan,
    clips: ClipSet,
    schedule: Schedule,
    device: torch.device,
    history: History,
    log: Log = _no_log,
    checkpoint: Checkpointer | None = None,
) -> None:
    """The decoder alone on whole 9-frame chunks, the encoder frozen, on targets only.

    Latents do not move, so this can follow the transformer phases without undoing
    them; it is how a VAE trained on shorter clips learns to decode a chunk's last
    latent frame. Controls are only ever encoded (the branches read their latents), so
    the decoder spends all its steps on frames like the ones it will decode.
    """
    phase = Phase("decoder", Randoms.seeded(schedule.seed + 3), history, log, checkpoint)
    sources, crop = [clips.targets], _crop(clips, schedule)
    frames = clips.targets.shape[1]
    batch = vae_batch_size(schedule.vae_batch, frames)
    vae.to(device).eval()
    vae.decoder.train()

    def loss_at(step: int) -> torch.Tensor:
        x = to_video(_vae_batch(sources, batch, frames, crop, phase.randoms.rng), device)
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.sample(phase.randoms.generator)
            latents = latents + latent_noise(vae, latents, schedule, phase.randoms.generator)
        return _reconstruction_loss(vae.decode(latents).sample, x)

    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    optimise(params, schedule.decoder_steps, schedule.vae_lr / 2, loss_at, phase)
    vae.eval()


def latent_noise(
    vae: AutoencoderKLWan,
    latents: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator,
) -> torch.Tensor:
    """Gaussian noise for raw latents [B, C, T, h, w]: per sample a level drawn from
    [0, schedule.decoder_latent_noise), times each channel's recorded std."""
    if not schedule.decoder_latent_noise:
        return torch.zeros_like(latents)
    b, c = latents.shape[:2]
    std = torch.tensor(vae.config.latents_std, dtype=latents.dtype).view(1, c, 1, 1, 1)
    level = schedule.decoder_latent_noise * torch.rand(b, generator=generator)
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype)
    return (level.view(b, 1, 1, 1, 1) * std * noise).to(latents.device)


@torch.no_grad()
def encode_clips(
    vae: AutoencoderKLWan, videos: np.ndarray, device: torch.device, batch: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of [K, T, H, W, 3] uint8 -> two [K, 16, T', h, w] on the CPU."""
    means, stds = [], []
    for start in range(0, len(videos), batch):
        dist = vae.encode(to_video(videos[start : start + batch], device)).latent_dist
        means.append(dist.mean.cpu())
        stds.append(dist.std.cpu())
    return torch.cat(means), torch.cat(stds)


def set_latent_stats(vae: AutoencoderKLWan, latents: torch.Tensor) -> None:
    """Record per-channel mean and std of [K, 16, ...] latents where the sampler reads them."""
    channels = latents.transpose(0, 1).reshape(latents.shape[1], -1)
    vae.register_to_config(
        latents_mean=channels.mean(dim=1).tolist(), latents_std=channels.std(dim=1).tolist()
    )


def normalise_latents(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel, as the sampler does: [K, 16, ...] -> same."""
    shape = (1, -1) + (1,) * (latents.ndim - 2)
    mean = torch.tensor(vae.config.latents_mean).view(shape)
    std = torch.tensor(vae.config.latents_std).view(shape)
    return (latents - mean) / std


@dataclass
class EncodedSet:
    """Normalised latent distributions of a ClipSet: [K, 16, T', h, w] means and stds."""

    target_mean: torch.Tensor
    target_std: torch.Tensor
    control_mean: dict[str, torch.Tensor]
    control_std: dict[str, torch.Tensor]
    image_size: tuple[int, int]


@torch.no_grad()
def encode_set(vae: AutoencoderKLWan, clips: ClipSet, device: torch.device) -> EncodedSet:
    """Encode every target and control once; the latent statistics come from the targets."""
    target_mean, target_std = encode_clips(vae, clips.targets, device)
    set_latent_stats(vae, target_mean)
    scale = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    control_mean, control_std = encode_controls(vae, clips.controls, device)
    return EncodedSet(
        normalise_latents(vae, target_mean),
        target_std / scale,
        control_mean,
        control_std,
        clips.targets.shape[2:4],
    )


@torch.no_grad()
def encode_controls(
    vae: AutoencoderKLWan, controls: dict[str, np.ndarray], device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Control videos (name -> [K, T, H, W, 3] uint8) as the branches read them: the
    normalised posterior mean and std per control, [K, 16, T', h, w] each."""
    scale = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    encoded = {name: encode_clips(vae, video, device) for name, video in controls.items()}
    return (
        {name: normalise_latents(vae, m) for name, (m, _) in encoded.items()},
        {name: s / scale for name, (_, s) in encoded.items()},
    )


def draw(mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A posterior sample, as the sampler's latent_dist.sample draws one."""
    return mean + std * torch.randn(mean.shape, generator=generator)


@dataclass
class FlowBatch:
    """One batch of the flow-matching objective, on the training device.

    latents / timestep / cond_mask: the transformer's inputs; target: the velocity
    noise - x0; loss_mask: 1 on latent frames that are generated, 0 on conditioning ones.
    """

    latents: torch.Tensor
    timestep: torch.Tensor
    cond_mask: torch.Tensor
    padding_mask: torch.Tensor
    context: Context
    target: torch.Tensor
    loss_mask: torch.Tensor
    index: np.ndarray  # which targets, for the caller to fetch their controls


SIGMA_DRAWS = ("logit-normal", "sampler")
# Steps of the dense schedule the "sampler" draw picks from: enough that the picks
# follow the schedule's density, not its 12 or 35 steps.
_SAMPLER_TABLE_STEPS = 1000


@functools.cache
def sampler_sigma_table() -> torch.Tensor:
    """[N] the flow sigmas the reference's sampler schedule (Karras from sigma 200) steps
    through when dense (the final 0 left out): uniform picks from them draw where it
    samples."""
    scheduler = configs.flow_scheduler()
    scheduler.set_timesteps(_SAMPLER_TABLE_STEPS)
    return scheduler.sigmas[:-1].float()


def draw_sigmas(b: int, how: str, generator: torch.Generator) -> torch.Tensor:
    """[b] noise levels in (0, 1): logit-normal, or uniform picks from
    ``sampler_sigma_table()`` for ``how="sampler"``."""
    if how == "logit-normal":
        return torch.sigmoid(torch.randn(b, generator=generator))
    if how != "sampler":
        raise ValueError(f"sigma_draw must be one of {SIGMA_DRAWS}, got {how!r}")
    table = sampler_sigma_table()
    return table[torch.randint(len(table), (b,), generator=generator)]


def flow_batch(
    encoded: EncodedSet,
    clips: ClipSet,
    schedule: Schedule,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
    sigma: float | None = None,
) -> FlowBatch:
    """Targets noised to sigmas drawn as ``schedule.sigma_draw`` says, or to ``sigma``
    for every sample, to measure; some with a clean first latent frame."""
    index = rng.integers(len(clips), size=schedule.batch)
    x0 = draw(encoded.target_mean[index], encoded.target_std[index], generator)
    b, _, t, h, w = x0.shape
    noise = torch.randn(x0.shape, generator=generator)
    if sigma is None:
        sigmas = draw_sigmas(b, schedule.sigma_draw, generator).view(b, 1, 1, 1, 1)
    else:
        sigmas = torch.full((b, 1, 1, 1, 1), sigma)
    noisy = (1 - sigmas) * x0 + sigmas * noise

    cond = torch.zeros(b, 1, t, 1, 1)
    if t > 1:  # a clip of one latent frame has nothing left to generate after it
        cond[torch.from_numpy(rng.random(b) < schedule.cond_frame_rate), :, 0] = 1.0
    latents = cond * x0 + (1 - cond) * noisy
    timestep = cond * CONDITIONAL_SIGMA + (1 - cond) * sigmas

    prompts = clips.prompt_embeds[torch.from_numpy(clips.prompt[index])]
    dropped = torch.from_numpy(rng.random(b) < schedule.prompt_dropout)
    prompts[dropped] = clips.null_embed
    height, width = encoded.image_size
    return FlowBatch(
        latents=latents.to(device, dtype),
        timestep=timestep.to(device, dtype),
        cond_mask=(cond * torch.ones(1, 1, t, h, w)).to(device, dtype),
        # One mask for the batch: the transformer repeats it per sample.
        padding_mask=torch.zeros(1, 1, height, width, device=device, dtype=dtype),
        context=prompts.to(device, dtype),
        target=(noise - x0).to(device),
        loss_mask=(1 - cond).to(device),
        index=index,
    )


def flow_loss(velocity: torch.Tensor, batch: FlowBatch) -> torch.Tensor:
    """Mean squared velocity error over generated latent frames."""
    err = (velocity.float() - batch.target) ** 2 * batch.loss_mask
    return err.sum() / (batch.loss_mask.expand_as(err).sum())


def base_velocity(
    transformer: CosmosTransformer3DModel,
    batch: FlowBatch,
    residuals: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    return transformer(
        hidden_states=batch.latents,
        timestep=batch.timestep,
        encoder_hidden_states=batch.context,
        block_controlnet_hidden_states=residuals,
        condition_mask=batch.cond_mask,
        padding_mask=batch.padding_mask,
        return_dict=False,
    )[0]


def train_base(
    transformer: CosmosTransformer3DModel,
    encoded: EncodedSet,
    clips: ClipSet,
    schedule: Schedule,
    device: torch.device,
    history: History,
    log: Log = _no_log,
    dtype: torch.dtype = torch.float32,
    checkpoint: Checkpointer | None = None,
) -> None:
    """Flow matching on the targets alone: the prompt is the only condition."""
    phase = Phase("base", Randoms.seeded(schedule.seed + 1), history, log, checkpoint)
    rng, generator = phase.randoms.rng, phase.randoms.generator
    transformer.to(device).train()

    def loss_at(step: int) -> torch.Tensor:
        batch = flow_batch(encoded, clips, schedule, rng, generator, device, dtype)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            return flow_loss(base_velocity(transformer, batch), batch)

    params = list(transformer.parameters())
    optimise(params, schedule.base_steps, schedule.lr, loss_at, phase)
    transformer.eval()


def active_branches(names: list[str], rng: np.random.Generator) -> list[str]:
    """A random non-empty subset, each branch in with probability one half."""
    while True:
        picked = [name for name in names if rng.random() < 0.5]
        if picked:
            return picked


def train_branches(
    transformer: CosmosTransformer3DModel,
    branches: dict[str, CosmosControlNetModel],
    encoded: EncodedSet,
    clips: ClipSet,
    schedule: Schedule,
    device: torch.device,
    history: History,
    log: Log = _no_log,
    dtype: torch.dtype = torch.float32,
    checkpoint: Checkpointer | None = None,
) -> None:
    """The branches learn with the base frozen (or learning at ``branch_base_lr`` of their
    rate); each step fuses a random subset of them."""
    phase = Phase("branches", Randoms.seeded(schedule.seed + 2), history, log, checkpoint)
    rng, generator = phase.randoms.rng, phase.randoms.generator
    joint = schedule.branch_base_lr > 0
    transformer.to(device).train(joint).requires_grad_(joint)
    for branch in branches.values():
        branch.to(device).train()

    def loss_at(step: int) -> torch.Tensor:
        batch = flow_batch(encoded, clips, schedule, rng, generator, device, dtype)
        picked = active_branches(list(branches), rng)
        scenes = torch.from_numpy(clips.scene[batch.index])
        mean, std = encoded.control_mean, encoded.control_std
        controls = {n: draw(mean[n][scenes], std[n][scenes], generator) for n in picked}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            residuals = fused_residuals(branches, controls, batch, dtype)
            return flow_loss(base_velocity(transformer, batch, residuals), batch)

    params = [p for branch in branches.values() for p in branch.parameters()]
    base = (list(transformer.parameters()), schedule.branch_base_lr) if joint else None
    optimise(params, schedule.branch_steps, schedule.lr, loss_at, phase, base)
    for branch in branches.values():
        branch.eval()
    transformer.eval().requires_grad_(True)


def fused_residuals(
    branches: dict[str, CosmosControlNetModel],
    controls: dict[str, torch.Tensor],
    batch: FlowBatch,
    dtype: torch.dtype = torch.float32,
    weights: dict[str, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """The residuals of the branches named in ``controls`` (name -> control latents
    [B, 16, T', h, w]) fused at ``weights`` (name -> token weights [B, N], normalised
    as the sampler normalises them), or at equal weights."""
    latents = batch.latents
    p_t, p_h, p_w = next(iter(branches.values())).config.patch_size
    tokens = latents.shape[2] // p_t * (latents.shape[3] // p_h) * (latents.shape[4] // p_w)
    equal = torch.full((tokens,), 1.0 / len(controls))
    fused = None
    for name, control in controls.items():
        weight = equal if weights is None else weights[name]
        residuals = branches[name](
            controls_latents=control.to(latents.device, dtype),
            latents=latents,
            timestep=batch.timestep,
            encoder_hidden_states=batch.context,
            condition_mask=batch.cond_mask,
            padding_mask=batch.padding_mask,
            return_dict=False,
        )[0]
        fused = fusion.accumulate(fused, residuals, weight)
    return [f.to(dtype) for f in fused]


@torch.no_grad()
def control_gain(
    transformer: CosmosTransformer3DModel,
    branches: dict[str, CosmosControlNetModel],
    encoded: EncodedSet,
    clips: ClipSet,
    sigmas: list[float],
    batch_size: int = 32,
    seed: int = 0,
) -> dict[float, dict[str, float]]:
    """How much the branches lower the flow loss: per noise level, the loss of the base
    alone ("base"), with each branch alone, and with all of them ("all"), on one batch
    of training clips with the posterior means of their controls (fp32, on the CPU)."""
    schedule = Schedule(batch=batch_size, prompt_dropout=0.0, cond_frame_rate=0.0)
    cpu = torch.device("cpu")
    out: dict[float, dict[str, float]] = {}
    for sigma in sigmas:
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        batch = flow_batch(encoded, clips, schedule, rng, generator, cpu, torch.float32, sigma)
        scenes = torch.from_numpy(clips.scene[batch.index])
        means = {name: m[scenes] for name, m in encoded.control_mean.items()}
        losses = {"base": flow_loss(base_velocity(transformer, batch), batch).item()}
        for label, names in [*((n, [n]) for n in branches), ("all", list(branches))]:
            residuals = fused_residuals(branches, {n: means[n] for n in names}, batch)
            losses[label] = flow_loss(base_velocity(transformer, batch, residuals), batch).item()
        out[sigma] = losses
    return out


def train_model(
    preset: ModelPreset,
    clips: ClipSet,
    controls: tuple[str, ...],
    schedule: Schedule,
    device: torch.device,
    log: Log = _no_log,
    dtype: torch.dtype = torch.float32,
    init: CosmosTransferModel | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every_s: float = 300.0,
    resume: bool = False,
) -> tuple[CosmosTransferModel, History]:
    """Build ``preset``'s modules (branches zero-initialised), or take ``init``'s, and run
    the phases; a phase of 0 steps leaves its modules as they are, so training can go on
    from a saved model (on another machine, say).

    ``checkpoint_dir``: where every module and the phase under way are saved every
    ``checkpoint_every_s`` seconds and after each phase; with ``resume`` a run goes on
    from the checkpoint there (finished phases are skipped, the one under way continues
    at its step). ``dtype`` is the autocast dtype of the transformer phases (bf16 on a
    GPU). The model's prompts go through the hash encoder it was trained with.
    """
    torch.manual_seed(schedule.seed)
    if init is None:
        vae = configs.build_vae(preset)
        transformer = configs.build_transformer(preset)
        branches = {name: configs.build_branch(preset, zero_init=True) for name in controls}
    else:
        vae, transformer, branches = init.vae, init.transformer, init.branches
    for module in (vae, transformer, *branches.values()):
        module.float()
    modules = {"vae": vae, "transformer": transformer}
    modules.update({f"branch_{name}": branch for name, branch in branches.items()})
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = Checkpointer(checkpoint_dir, modules, checkpoint_every_s)
    history = checkpoint.resume() if resume and checkpoint and checkpoint.exists() else History()

    def pending(name: str, steps: int) -> bool:
        return steps > 0 and name not in history.done

    run = (history, log)
    clips = split_frames(clips, preset.frames_per_chunk)
    if pending("vae", schedule.vae_steps):
        train_vae(vae, clips, schedule, device, *run, checkpoint)
    encoded = encode_set(vae.to(device), clips, device)
    if pending("base", schedule.base_steps):
        train_base(transformer, encoded, clips, schedule, device, *run, dtype, checkpoint)
    if pending("branches", schedule.branch_steps):
        train_branches(
            transformer, branches, encoded, clips, schedule, device, *run, dtype, checkpoint
        )
    if pending("decoder", schedule.decoder_steps):
        train_decoder(vae, clips, schedule, device, *run, checkpoint)
    model = CosmosTransferModel(
        transformer,
        vae,
        branches,
        configs.flow_scheduler(preset.sampler_sigma_max),
        frames_per_chunk=preset.frames_per_chunk,
        origin="project",
        prompt_cache=hash_prompt_cache(preset.text_embed_dim),
        device=device,
    )
    return model, history
