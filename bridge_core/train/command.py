"""``cosmos-bridge train-default``: build the training scenes and train the default model.

Registered by bridge_core/cli.py. The steps, each resumable:

1. scenes: procedural layouts, captured (controls) and rendered with Cycles (targets);
   needs the ``train`` extra (bpy) and skips finished scenes;
2. clips.npz: the scenes packed into arrays (also what a GPU machine is given);
3. training: VAE, base, branches (transfer_model.cosmos.training), then the model
   folder in fp16 safetensors, history.json and loss.png.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from bridge_core.errors import BridgeError, InputError
from bridge_core.outputs import check_inside, write_bytes_atomic
from bridge_core.terminal import console, progress_bar
from bridge_core.train.data import (
    HELD_OUT_SEED,
    PackedClips,
    build_scenes,
    load_packed,
    pack_clips,
    save_packed,
)

CLIPS_FILE = "clips.npz"
CHECKPOINT_DIR = "checkpoint"
LOG_EVERY = 50  # steps between progress lines when there is no terminal to draw a bar in
# What the shipped weights were trained with, on 2 CPU cores in about 80 minutes (the
# model card has the figures). On a GPU the steps are bound by kernel launches, so a
# bigger --batch costs little more per step there.
DEFAULT_SCHEDULE = {
    "vae_steps": 1300,
    "vae_batch": 8,
    "base_steps": 1500,
    "branch_steps": 1200,
    "decoder_steps": 180,
    "batch": 16,
}

if TYPE_CHECKING:
    import torch

    from transfer_model.cosmos.training import ClipSet, Schedule


def clip_set(packed: PackedClips, prompts: list[str], width: int) -> ClipSet:
    """Every (scene, condition) pair as one training clip, prompts hashed to ``width``."""
    import torch

    from transfer_model.cosmos.model import DEFAULT_NEGATIVE_PROMPT
    from transfer_model.cosmos.prompts import HASH_PROMPT_TOKENS, HashTextEncoder
    from transfer_model.cosmos.training import ClipSet

    scenes, conditions = packed.targets.shape[:2]
    encoder = HashTextEncoder(width)
    with torch.no_grad():
        embeds = encoder.encode(prompts, HASH_PROMPT_TOKENS)
        null = encoder.encode([DEFAULT_NEGATIVE_PROMPT], HASH_PROMPT_TOKENS)[0]
    return ClipSet(
        targets=packed.targets.reshape(-1, *packed.targets.shape[2:]),
        controls=packed.controls,
        scene=np.repeat(np.arange(scenes), conditions),
        prompt=np.tile(np.arange(conditions), scenes),
        prompt_embeds=embeds,
        null_embed=null,
    )


def plot_losses(losses: dict[str, list[float]], path: Path) -> None:
    """One panel per phase, raw loss and its running mean, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(losses), figsize=(4.5 * len(losses), 3.2), squeeze=False)
    for ax, (phase, values) in zip(axes[0], losses.items(), strict=True):
        steps = np.arange(1, len(values) + 1)
        window = max(1, len(values) // 50)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps, values, alpha=0.3, lw=0.8)
        ax.plot(steps[window - 1 :], smooth, lw=1.5)
        ax.set_title(phase)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_default(
    workdir: Annotated[Path, typer.Option(help="Scenes, clips.npz and the model go here.")] = Path(
        "train-default"
    ),
    scenes: Annotated[int, typer.Option(help="Procedural layouts to train on.")] = 48,
    size: Annotated[int, typer.Option(help="Square frame size in pixels (multiple of 16).")] = 128,
    samples: Annotated[int, typer.Option(help="Cycles samples per pixel.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    vae_steps: Annotated[int | None, typer.Option(help="VAE steps.")] = None,
    base_steps: Annotated[int | None, typer.Option(help="Base transformer steps.")] = None,
    branch_steps: Annotated[int | None, typer.Option(help="Control branch steps.")] = None,
    decoder_steps: Annotated[
        int | None, typer.Option(help="VAE decoder steps on whole chunks (encoder frozen).")
    ] = None,
    decoder_latent_noise: Annotated[
        float | None,
        typer.Option(
            help="Most noise, in latent stds, added to the latents the decoder phase decodes.",
            min=0.0,
        ),
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Clips per transformer step.")] = None,
    sigma_draw: Annotated[
        str | None,
        typer.Option(
            help="Noise levels of the base and branch phases: logit-normal, or sampler "
            "(where the sampler's schedule steps)."
        ),
    ] = None,
    vae_batch: Annotated[
        int | None, typer.Option(help="Frames per VAE step (crops x frames each).")
    ] = None,
    branch_base_lr: Annotated[
        float | None,
        typer.Option(
            help="Base learning rate in the branch phase, as a share of the branches' "
            "(0: the base stays frozen).",
            min=0.0,
        ),
    ] = None,
    build_only: Annotated[bool, typer.Option(help="Stop after writing clips.npz.")] = False,
    out: Annotated[Path | None, typer.Option(help="Model folder (default: WORKDIR/model).")] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Go on from this model folder; phases given 0 steps are kept as is."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Go on from WORKDIR/checkpoint, where a stopped run left off.")
    ] = False,
    checkpoint_minutes: Annotated[
        float, typer.Option(help="Minutes between checkpoints (at most 10).", min=0.0, max=10.0)
    ] = 5.0,
    preset: Annotated[
        str, typer.Option(help="Model sizes and codec, a key of MODEL_PRESETS.")
    ] = "default",
) -> None:
    """Build procedural training scenes (capture + Cycles) and train the small default model."""
    if size % 16:
        raise InputError(f"size must be a multiple of 16, got {size}", None, "--size")
    if not build_only:
        # Checked before the scenes are built; --build-only needs no torch (model extra).
        from transfer_model.cosmos.configs import MODEL_PRESETS

        # Trained on the hash encoder's prompts, text_embed_dim wide: not the real-size
        # preset, which takes Cosmos-Reason's.
        trainable = [k for k, p in MODEL_PRESETS.items() if p.prompt_embed_dim == p.text_embed_dim]
        if preset not in trainable:
            raise InputError(
                f"preset {preset!r} cannot be trained here; one of {', '.join(trainable)}",
                None,
                "--preset",
            )
    from bridge_core.trainset.conditions import CONDITIONS

    conditions = list(CONDITIONS)
    clips_path = workdir / CLIPS_FILE
    seeds = list(range(scenes))
    if not clips_path.exists():
        try:
            import bpy  # noqa: F401
        except ImportError as exc:
            raise BridgeError(
                f"building training scenes needs Blender's bpy ({exc}); install it with: "
                "pip install -e '.[train]' (Python 3.11), or give a WORKDIR with clips.npz"
            ) from exc
        with progress_bar() as progress:
            task = progress.add_task("scenes (capture + Cycles)", total=len(seeds))
            build_scenes(
                workdir,
                seeds,
                (size, size),
                conditions,
                samples,
                lambda _: progress.advance(task),
            )
        save_packed(pack_clips(workdir, seeds, conditions), clips_path)
        console.print(
            f"packed {len(seeds)} scene(s) x {len(conditions)} condition(s) to {clips_path}"
        )
    if build_only:
        return
    import torch

    from transfer_model.cosmos.training import SIGMA_DRAWS, Schedule

    if sigma_draw is not None and sigma_draw not in SIGMA_DRAWS:
        raise InputError(
            f"sigma draw {sigma_draw!r} is not one of {', '.join(SIGMA_DRAWS)}",
            None,
            "--sigma-draw",
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    given = {"vae_steps": vae_steps, "base_steps": base_steps, "branch_steps": branch_steps}
    given.update(decoder_steps=decoder_steps, decoder_latent_noise=decoder_latent_noise)
    given.update(batch=batch, vae_batch=vae_batch, sigma_draw=sigma_draw)
    given.update(branch_base_lr=branch_base_lr)
    chosen = {k: v for k, v in given.items() if v is not None}
    schedule = Schedule(**{**DEFAULT_SCHEDULE, **chosen})
    checkpoint = workdir / CHECKPOINT_DIR
    if (checkpoint / "state.json").exists() and not resume:
        raise InputError(
            "holds a training run that was stopped; pass --resume to go on from it, "
            "or delete the folder to start again",
            checkpoint,
        )
    if resume and not (checkpoint / "state.json").exists():
        console.print(f"no checkpoint in {checkpoint}: starting from the beginning")
    _train(
        workdir,
        clips_path,
        out or workdir / "model",
        torch.device(device),
        schedule,
        init,
        resume=resume,
        checkpoint_every_s=60 * checkpoint_minutes,
        preset=preset,
    )


def half_precision(module) -> None:
    """fp16 on the CPU, except what the class keeps in fp32 (the learnable positional
    embeddings): the shipped weights then fit 30 MB and load back unchanged."""
    import torch

    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    module.to("cpu")
    for name, param in module.named_parameters():
        if not any(k in name.split(".") for k in keep):
            param.data = param.data.to(torch.float16)


def _train(
    workdir: Path,
    clips_path: Path,
    out: Path,
    device: torch.device,
    schedule: Schedule,
    init: Path | None,
    resume: bool = False,
    checkpoint_every_s: float = 300.0,
    preset: str = "default",
) -> None:
    import shutil

    import torch

    from bridge_core.trainset.conditions import CONDITIONS
    from transfer_model.cosmos.configs import MODEL_PRESETS
    from transfer_model.cosmos.loading import load_transfer_model
    from transfer_model.cosmos.training import train_model

    packed = load_packed(clips_path)
    if (packed.seeds >= HELD_OUT_SEED).any():
        raise InputError("clips.npz holds held-out scenes; rebuild it", clips_path)
    sizes = MODEL_PRESETS[preset]
    clips = clip_set(
        packed, [CONDITIONS[c].prompt for c in packed.conditions], sizes.text_embed_dim
    )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    start = None if init is None else load_transfer_model(init, device="cpu", dtype=torch.float32)
    phases = {
        "vae": schedule.vae_steps,
        "base": schedule.base_steps,
        "branches": schedule.branch_steps,
        "decoder": schedule.decoder_steps,
    }
    phases = {phase: steps for phase, steps in phases.items() if steps}
    with progress_bar() as progress:
        tasks = {p: progress.add_task(f"train {p}", total=n) for p, n in phases.items()}

        def log(phase: str, step: int, steps: int, loss: float) -> None:
            progress.update(tasks[phase], completed=step, description=f"train {phase} {loss:.4f}")
            # Rich draws no bar where stdout is not a terminal (nohup, CI, a log file).
            if not console.is_terminal and (step % LOG_EVERY == 0 or step == steps):
                console.print(f"{phase} step {step}/{steps} loss {loss:.4f}")

        model, history = train_model(
            sizes,
            clips,
            tuple(packed.controls),
            schedule,
            device,
            log,
            dtype,
            start,
            checkpoint_dir=workdir / CHECKPOINT_DIR,
            checkpoint_every_s=checkpoint_every_s,
            resume=resume,
        )
    history_path = workdir / "history.json"
    for module in (model.transformer, model.vae, *model.branches.values()):
        half_precision(module)
    model.save_pretrained(out)
    # Going on from a model keeps the earlier phases' curves and step counts.
    ran = {k: v for k, v in asdict(schedule).items() if v or not k.endswith("_steps")}
    earlier = json.loads(history_path.read_text()) if init and history_path.exists() else {}
    losses = {**earlier.get("losses", {}), **history.losses}
    seconds = {**earlier.get("seconds", {}), **history.seconds}
    record = {
        "schedule": {**earlier.get("schedule", {}), **ran},
        "device": str(device),
        "scenes": packed.seeds.tolist(),
        "conditions": packed.conditions,
        "seconds": seconds,
        "final_loss": {p: float(np.mean(v[-50:])) for p, v in losses.items()},
        "losses": losses,
    }
    write_bytes_atomic(history_path, json.dumps(record).encode(), workdir)
    plot_losses(losses, workdir / "loss.png")
    # The model is written: the run is complete and nothing is left to resume. Through
    # the guard: a checkpoint folder linked elsewhere is not emptied.
    shutil.rmtree(check_inside(workdir / CHECKPOINT_DIR, workdir), ignore_errors=True)
    for phase, seconds in history.seconds.items():
        steps = len(history.losses[phase])
        console.print(
            f"{phase}: {steps} steps in {seconds:.0f} s ({1000 * seconds / steps:.0f} ms/step), "
            f"final loss {record['final_loss'][phase]:.4f}"
        )
    size_mb = sum(f.stat().st_size for f in out.rglob("*.safetensors")) / 1e6
    console.print(
        f"model written to [bold]{out}[/] ({size_mb:.1f} MB of safetensors); "
        f"loss curves in {workdir / 'loss.png'}"
    )
