"""Few-step students of a Transfer model: distillation on teacher pairs.

The method is knowledge distillation on teacher pairs, the first stage of NVIDIA's 1-step
Transfer1 edge model, with the straight ("reflow") coupling of rectified flow:

1. Pairs: the teacher, guided, integrates noise e to its result x over its full
   schedule, for random scenes, prompts, subsets of controls and region weight maps.
2. Student: at each of a few noise levels s it sees x_s = (1 - s) x + s e and learns
   the velocity e - x with the flow loss the teacher was trained with. One Euler step
   from any level then lands on the line to x, so stepping through every k-th level
   ends on the teacher's result: one student runs in 4, 2 or 1 steps, without guidance
   (the teacher's guided result is what it learnt).

Why not DMD2 or rCM, which NVIDIA uses for Transfer2.5: both train a second score
network beside the student and add a distribution-matching or consistency term, about
three models' memory and forwards per step; this needs one, on pairs built once and
cached, and is what a 2-core CPU can train. They can refine such a student later.

The student is the teacher's base transformer, trained on; the control branches stay
the teacher's, frozen. They turn controls into features at each noise level, which
distillation has no reason to change, and sharing them keeps a student one transformer
beside its teacher. The training controls and their maps are random per pair, so the
student keeps obeying each control alone, every mix, and the maps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import CosmosControlNetModel, CosmosTransformer3DModel, UniPCMultistepScheduler
from safetensors.torch import load_file, save_file

from transfer_model.cosmos import fusion
from transfer_model.cosmos.checkpoint import Checkpointer, History, Randoms
from transfer_model.cosmos.model import CosmosTransferModel
from transfer_model.cosmos.sampling import (
    CONDITIONAL_SIGMA,
    denoise,
    min_chunk_frames,
    prompt_contexts,
)
from transfer_model.cosmos.student import StudentSchedule, student_sigmas
from transfer_model.cosmos.training import (
    FlowBatch,
    Log,
    Phase,
    active_branches,
    base_velocity,
    cut_frames,
    draw,
    encode_controls,
    flow_loss,
    fused_residuals,
    optimise,
)

PAIR_FILE = "pairs_{index:04d}.safetensors"


@dataclass(frozen=True)
class DistillSchedule:
    """What a distillation run does: the student's steps, the pairs and the training."""

    steps: int = 4  # the student's most steps; it also runs in each divisor of them
    pairs: int = 1024
    pair_batch: int = 32  # pairs the teacher integrates at once (one file each)
    teacher_steps: int = 12
    guidance: float = 3.0
    guide_controls: bool = False  # the teacher's unguided pass without the branches
    train_steps: int = 1500
    batch: int = 16
    lr: float = 1e-4
    cond_frame_rate: float = 0.25  # share of samples with a clean first latent frame
    seed: int = 0


@dataclass
class ControlLatents:
    """Every scene's controls as the branches read them, one chunk each.

    mean / std: control name -> [S, 16, T', h, w], normalised; image_size: (H, W) pixels.
    """

    mean: dict[str, torch.Tensor]
    std: dict[str, torch.Tensor]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(next(iter(self.mean.values())))

    def token_shape(self, patch: tuple[int, int, int]) -> tuple[int, int, int]:
        """(t, h, w) tokens of a chunk with the transformer's ``patch``."""
        _, _, t, h, w = next(iter(self.mean.values())).shape
        return t // patch[0], h // patch[1], w // patch[2]


def chunk_controls(
    teacher: CosmosTransferModel, controls: dict[str, np.ndarray], device: torch.device
) -> ControlLatents:
    """Control videos (name -> [S, T, H, W, 3] uint8) cut into the teacher's chunks and
    encoded by its VAE; every chunk is a scene of its own."""
    frames = min_chunk_frames(teacher.grid, teacher.frames_per_chunk)
    cut = {name: cut_frames(video, frames) for name, video in controls.items()}
    mean, std = encode_controls(teacher.vae, cut, device)
    return ControlLatents(mean, std, next(iter(controls.values())).shape[2:4])


def random_region_weights(
    names: list[str], tokens: tuple[int, int, int], rng: np.random.Generator
) -> torch.Tensor:
    """One pair's token weights [len(names), N], normalised as the sampler normalises them.

    A random non-empty subset of the branches is on; each is 1 everywhere half the
    time, else 1 inside a random rectangle of the token grid and 0 around it, or the
    reverse (the same rectangle in every latent frame).
    """
    t, h, w = tokens
    maps = torch.zeros(len(names), t, h, w)
    for name in active_branches(names, rng):
        i = names.index(name)
        if rng.random() < 0.5:
            maps[i] = 1.0
            continue
        y0, y1 = sorted(rng.integers(0, h + 1, size=2))
        x0, x1 = sorted(rng.integers(0, w + 1, size=2))
        inside = rng.random() < 0.5
        maps[i] = 0.0 if inside else 1.0
        maps[i, :, y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)] = 1.0 if inside else 0.0
    return torch.stack(fusion.normalise(list(maps.flatten(1))))


@dataclass
class TeacherPairs:
    """The teacher's results and what made them.

    noise / result: [K, 16, T', h, w] float32, the start and end of the teacher's path;
    scene / prompt: [K] int64; weights: [K, n_branches, N] normalised token weights,
    branches in ``branches`` order (0 where a branch was off).
    """

    noise: torch.Tensor
    result: torch.Tensor
    scene: torch.Tensor
    prompt: torch.Tensor
    weights: torch.Tensor
    branches: list[str]

    def __len__(self) -> int:
        return len(self.noise)

    def save(self, path: Path) -> None:
        tensors = {k: getattr(self, k) for k in ("noise", "result", "scene", "prompt", "weights")}
        tmp = path.with_name(path.name + ".tmp")
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(tmp),
            metadata={"branches": ",".join(self.branches)},
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TeacherPairs:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as file:
            branches = file.metadata()["branches"].split(",")
        return cls(**load_file(str(path)), branches=branches)

    @classmethod
    def concat(cls, parts: list[TeacherPairs]) -> TeacherPairs:
        fields = ("noise", "result", "scene", "prompt", "weights")
        joined = {k: torch.cat([getattr(p, k) for p in parts]) for k in fields}
        return cls(**joined, branches=parts[0].branches)


@torch.no_grad()
def teacher_pair_block(
    teacher: CosmosTransferModel,
    latents: ControlLatents,
    prompt_embeds: torch.Tensor,
    negative_embed: torch.Tensor,
    schedule: DistillSchedule,
    index: int,
) -> TeacherPairs:
    """Block ``index`` of ``schedule.pair_batch`` pairs, integrated by the teacher as its
    sampler does (guided, UniPC, the same fused branches), from its own random streams,
    so a block comes out the same whenever it is built.

    prompt_embeds: [P, L, D]; negative_embed: [L, D] what guidance pushes away from.
    """
    rng = np.random.default_rng([schedule.seed, index])
    generator = torch.Generator().manual_seed(schedule.seed * 1_000_003 + index)
    device, transformer = teacher.device, teacher.transformer
    names = list(teacher.branches)
    size = schedule.pair_batch
    scene = torch.from_numpy(rng.integers(len(latents), size=size))
    prompt = torch.from_numpy(rng.integers(len(prompt_embeds), size=size))
    tokens = latents.token_shape(teacher.grid.patch)
    weights = torch.stack([random_region_weights(names, tokens, rng) for _ in range(size)])

    shape = (size, *next(iter(latents.mean.values())).shape[1:])
    noise = torch.randn(shape, generator=generator)
    active = []
    for j, name in enumerate(names):
        control = draw(latents.mean[name][scene], latents.std[name][scene], generator)
        if weights[:, j].any():
            weight = weights[:, j].to(device)
            active.append((teacher.branches[name], control.to(device, transformer.dtype), weight))
    negative = negative_embed.expand(size, *negative_embed.shape) if schedule.guidance else None
    contexts = prompt_contexts(transformer, prompt_embeds[prompt], negative, device)
    result = denoise(
        transformer,
        UniPCMultistepScheduler.from_config(teacher.scheduler.config),
        active,
        contexts,
        noise.to(device),
        torch.zeros(shape, device=device),
        torch.zeros(size, 1, shape[2], 1, 1, device=device),  # no conditioning frames
        torch.zeros(1, 1, *latents.image_size, device=device, dtype=transformer.dtype),
        schedule.teacher_steps,
        schedule.guidance,
        guide_controls=schedule.guide_controls,
    )
    return TeacherPairs(noise, result.float().cpu(), scene, prompt, weights, names)


def build_pairs(
    teacher: CosmosTransferModel,
    latents: ControlLatents,
    prompt_embeds: torch.Tensor,
    negative_embed: torch.Tensor,
    schedule: DistillSchedule,
    folder: Path,
    on_block: Callable[[int, int], None] | None = None,
) -> TeacherPairs:
    """Every block of pairs, each read from ``folder`` if a run already built it, else
    built and saved there; ``on_block(done, total)`` after each."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = -(-schedule.pairs // schedule.pair_batch)
    parts = []
    for index in range(blocks):
        path = folder / PAIR_FILE.format(index=index)
        if path.exists():
            parts.append(TeacherPairs.load(path))
        else:
            parts.append(
                teacher_pair_block(teacher, latents, prompt_embeds, negative_embed, schedule, index)
            )
            parts[-1].save(path)
        if on_block is not None:
            on_block(index + 1, blocks)
    return TeacherPairs.concat(parts)


def student_batch(
    student: CosmosTransformer3DModel,
    pairs: TeacherPairs,
    prompt_embeds: torch.Tensor,
    sigmas: tuple[float, ...],
    schedule: DistillSchedule,
    randoms: Randoms,
    image_size: tuple[int, int],
    device: torch.device,
) -> FlowBatch:
    """Pairs placed at one of the student's levels each, on the line from their noise to
    the teacher's result; some with that result's first latent frame given clean, as
    the sampler gives later chunks the frames before them."""
    rng = randoms.rng
    index = rng.integers(len(pairs), size=schedule.batch)
    picked = torch.from_numpy(index)
    x0, noise = pairs.result[picked], pairs.noise[picked]
    b, _, t, h, w = x0.shape
    picks = torch.from_numpy(rng.integers(len(sigmas), size=b))
    s = torch.tensor(sigmas)[picks].view(b, 1, 1, 1, 1)
    cond = torch.zeros(b, 1, t, 1, 1)
    if t > 1:
        cond[torch.from_numpy(rng.random(b) < schedule.cond_frame_rate), :, 0] = 1.0
    noisy = (1 - s) * x0 + s * noise
    return FlowBatch(
        latents=(cond * x0 + (1 - cond) * noisy).to(device),
        timestep=(cond * CONDITIONAL_SIGMA + (1 - cond) * s).to(device),
        cond_mask=(cond * torch.ones(1, 1, t, h, w)).to(device),
        padding_mask=torch.zeros(1, 1, *image_size, device=device),
        # No prompt dropout: a student always runs with its prompt, guidance built in.
        context=prompt_contexts(student, prompt_embeds[pairs.prompt[picked]], None, device)[0],
        target=(noise - x0).to(device),
        loss_mask=(1 - cond).to(device),
        index=index,
    )


def train_student(
    student: CosmosTransformer3DModel,
    branches: dict[str, CosmosControlNetModel],
    pairs: TeacherPairs,
    latents: ControlLatents,
    prompt_embeds: torch.Tensor,
    schedule: DistillSchedule,
    device: torch.device,
    history: History,
    log: Callable[[str, int, int, float], None],
    checkpoint: Checkpointer | None = None,
) -> None:
    """The flow loss on the pairs' lines at the student's levels, branches frozen and
    fused at each pair's own weights."""
    phase = Phase("student", Randoms.seeded(schedule.seed + 4), history, log, checkpoint)
    sigmas = student_sigmas(schedule.steps)
    student.to(device).train()
    for branch in branches.values():
        branch.to(device).eval().requires_grad_(False)

    def loss_at(step: int) -> torch.Tensor:
        batch = student_batch(
            student,
            pairs,
            prompt_embeds,
            sigmas,
            schedule,
            phase.randoms,
            latents.image_size,
            device,
        )
        picked = torch.from_numpy(batch.index)
        scene, weights = pairs.scene[picked], pairs.weights[picked]
        on = [j for j, _ in enumerate(pairs.branches) if weights[:, j].any()]
        controls = {
            pairs.branches[j]: draw(
                latents.mean[pairs.branches[j]][scene],
                latents.std[pairs.branches[j]][scene],
                phase.randoms.generator,
            )
            for j in on
        }
        # The branches do not learn: their residuals need no graph.
        with torch.no_grad():
            residuals = fused_residuals(
                branches,
                controls,
                batch,
                weights={pairs.branches[j]: weights[:, j] for j in on},
            )
        return flow_loss(base_velocity(student, batch, residuals), batch)

    optimise(list(student.parameters()), schedule.train_steps, schedule.lr, loss_at, phase)
    student.eval()


def distill(
    teacher: CosmosTransferModel,
    teacher_name: str,
    controls: dict[str, np.ndarray],
    prompt_embeds: torch.Tensor,
    negative_embed: torch.Tensor,
    schedule: DistillSchedule,
    pairs_dir: Path,
    checkpoint_dir: Path,
    log: Log,
    on_block: Callable[[int, int], None] | None = None,
    resume: bool = False,
    checkpoint_every_s: float = 300.0,
) -> tuple[CosmosTransferModel, History]:
    """A student of ``teacher`` for ``schedule.steps`` steps (and every divisor of them).

    controls: name -> [S, T, H, W, 3] uint8, one clip per scene; prompt_embeds [P, L, D]
    and negative_embed [L, D] in the teacher's embedding space. Pairs are cached in
    ``pairs_dir`` (built only where missing), the training checkpointed in
    ``checkpoint_dir``; with ``resume`` a stopped run goes on at its step. The
    student keeps the teacher's VAE, branches, prompts and guardrail.
    """
    device = teacher.device
    latents = chunk_controls(teacher, controls, device)
    pairs = build_pairs(
        teacher, latents, prompt_embeds, negative_embed, schedule, pairs_dir, on_block
    )
    student = copy.deepcopy(teacher.transformer).float()
    checkpoint = Checkpointer(checkpoint_dir, {"transformer": student}, checkpoint_every_s)
    history = checkpoint.resume() if resume and checkpoint.exists() else History()
    if "student" not in history.done:
        train_student(
            student,
            teacher.branches,
            pairs,
            latents,
            prompt_embeds,
            schedule,
            device,
            history,
            log,
            checkpoint,
        )
    model = CosmosTransferModel(
        student,
        teacher.vae,
        teacher.branches,
        teacher.scheduler,
        frames_per_chunk=teacher.frames_per_chunk,
        origin=teacher.origin,
        prompt_cache=teacher.prompt_cache,
        safety_checker=teacher.safety_checker,
        device=device,
        student=StudentSchedule(
            student_sigmas(schedule.steps),
            teacher_name,
            schedule.teacher_steps,
            schedule.guidance,
            schedule.guide_controls,
        ),
    )
    return model, history
