"""``cosmos-bridge distill``: a few-step student of the default model or of a user's own.

Registered by bridge_core/cli.py. The steps, each resumable:

1. scenes: procedural layouts, captured headless (controls only: the student learns
   from the teacher's outputs, not from renders); finished ones are skipped;
2. pairs: the teacher's guided results for random controls, maps and prompts, cached
   under WORKDIR/pairs/<digest of the teacher and the pair settings>/;
3. training: the student (transfer_model.cosmos.distillation), checkpointed, then the
   model folder in fp16 safetensors, history.json and loss.png.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from bridge_core.errors import InputError
from bridge_core.outputs import check_inside, write_bytes_atomic
from bridge_core.terminal import console, progress_bar
from bridge_core.train.command import LOG_EVERY, half_precision, plot_losses
from bridge_core.train.data import capture_layout, scene_controls

CHECKPOINT_DIR = "checkpoint"
# The demo's sampling: what the default model's users run, so what its student copies.
DEFAULT_TEACHER_STEPS = {"default": 12}
GENERIC_TEACHER_STEPS = 35


def layout_controls(workdir: Path, scenes: int, size: int, on_scene=None) -> dict[str, np.ndarray]:
    """Controls of layouts 0 .. scenes-1, captured where missing: name -> [S, T, H, W, 3]."""
    videos: dict[str, list[np.ndarray]] = {}
    for seed in range(scenes):
        for name, video in scene_controls(capture_layout(workdir, seed, (size, size))).items():
            videos.setdefault(name, []).append(video)
        if on_scene is not None:
            on_scene(seed)
    return {name: np.stack(v) for name, v in videos.items()}


def pairs_key(weights: dict[str, str], settings: dict) -> str:
    """What a cache of pairs depends on: the teacher's weights and how pairs are made."""
    blob = json.dumps({"weights": weights, **settings}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def distill(
    teacher: Annotated[
        str, typer.Option(help="'default', or a model folder (or hub id) to distil.")
    ] = "default",
    steps: Annotated[
        int, typer.Option(help="The student's steps (it also runs in each divisor).", min=1)
    ] = 4,
    workdir: Annotated[
        Path, typer.Option(help="Scenes, cached pairs, checkpoints and the student go here.")
    ] = Path("distill"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    resume: Annotated[
        bool, typer.Option(help="Go on from WORKDIR/checkpoint, where a stopped run left off.")
    ] = False,
    scenes: Annotated[int, typer.Option(help="Procedural layouts to draw controls from.")] = 32,
    size: Annotated[int, typer.Option(help="Square frame size in pixels (multiple of 16).")] = 128,
    prompt: Annotated[
        list[str] | None,
        typer.Option(help="A prompt to learn (repeatable); default: the four lighting ones."),
    ] = None,
    pairs: Annotated[int, typer.Option(help="Teacher results to learn from.", min=1)] = 1024,
    pair_batch: Annotated[int, typer.Option(help="Results the teacher makes at once.")] = 32,
    teacher_steps: Annotated[
        int | None, typer.Option(help="The teacher's steps (default: 12 for 'default', else 35).")
    ] = None,
    guidance: Annotated[float, typer.Option(help="The teacher's guidance.", min=0.0)] = 3.0,
    guide_controls: Annotated[
        bool,
        typer.Option(
            help="The teacher's unguided pass runs without the control branches (the spec's "
            "model.guide_controls), so the student learns results that follow the controls more."
        ),
    ] = False,
    train_steps: Annotated[int, typer.Option(help="Student training steps.", min=1)] = 1500,
    batch: Annotated[int, typer.Option(help="Pairs per training step.", min=1)] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-4,
    out: Annotated[
        Path | None, typer.Option(help="Student folder (default: WORKDIR/student-<steps>step).")
    ] = None,
    share_teacher_parts: Annotated[
        bool,
        typer.Option(
            help="Write only the student's transformer; its VAE, branches and scheduler are "
            "read from the teacher's folder, which must then stay beside it."
        ),
    ] = False,
    checkpoint_minutes: Annotated[
        float, typer.Option(help="Minutes between checkpoints (at most 10).", min=0.0, max=10.0)
    ] = 5.0,
) -> None:
    """Distil a teacher into a student that samples in a few steps without guidance."""
    if size % 16:
        raise InputError(f"size must be a multiple of 16, got {size}", None, "--size")
    if guide_controls and not guidance:
        raise InputError(
            "needs guidance: it changes only the guidance pass", None, "--guide-controls"
        )
    checkpoint = workdir / CHECKPOINT_DIR
    if (checkpoint / "state.json").exists() and not resume:
        raise InputError(
            "holds a distillation that was stopped; pass --resume to go on from it, "
            "or delete the folder to start again",
            checkpoint,
        )
    import torch

    from bridge_core.run.models import resolve_model
    from bridge_core.spec.models import ModelSpec
    from bridge_core.trainset.conditions import CONDITIONS
    from transfer_model import DEFAULT_MODEL_DIR
    from transfer_model.cosmos.distillation import DistillSchedule
    from transfer_model.cosmos.distillation import distill as run_distillation
    from transfer_model.cosmos.model import DEFAULT_NEGATIVE_PROMPT

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = resolve_model(ModelSpec(id=teacher, device=device, dtype="float32"))
    model = resolved.model
    if model.student is not None:
        raise InputError("is already a distilled student; distil its teacher", Path(teacher))
    teacher_dir = DEFAULT_MODEL_DIR if teacher == "default" else Path(teacher)
    if share_teacher_parts and not teacher_dir.is_dir():
        raise InputError(
            "--share-teacher-parts needs a teacher folder to point to, not a hub id",
            None,
            "--teacher",
        )
    name = f"{resolved.id}@{resolved.revision}" if resolved.revision else resolved.id
    prompts = prompt or [c.prompt for c in CONDITIONS.values()]
    schedule = DistillSchedule(
        steps=steps,
        pairs=pairs,
        pair_batch=pair_batch,
        teacher_steps=teacher_steps or DEFAULT_TEACHER_STEPS.get(teacher, GENERIC_TEACHER_STEPS),
        guidance=guidance,
        guide_controls=guide_controls,
        train_steps=train_steps,
        batch=batch,
        lr=lr,
    )
    pair_settings = {
        "scenes": scenes,
        "size": size,
        "prompts": prompts,
        **{
            k: getattr(schedule, k)
            for k in ("pairs", "pair_batch", "teacher_steps", "guidance", "guide_controls")
        },
        "seed": schedule.seed,
    }
    pairs_dir = workdir / "pairs" / pairs_key(resolved.weights, pair_settings)
    out = out or workdir / f"student-{steps}step"

    with progress_bar() as progress:
        task = progress.add_task("scenes (capture)", total=scenes)
        controls = layout_controls(workdir, scenes, size, lambda _: progress.advance(task))
        controls = {n: v for n, v in controls.items() if n in model.branches}
        embeds = model.embed(*prompts, DEFAULT_NEGATIVE_PROMPT)
        prompt_embeds, negative = torch.cat(embeds[:-1]), embeds[-1][0]
        pair_task = progress.add_task("teacher pairs", total=None)
        train_task = progress.add_task("train student", total=schedule.train_steps)
        started = time.perf_counter()

        def on_block(done: int, total: int) -> None:
            progress.update(pair_task, completed=done, total=total)
            if not console.is_terminal:
                console.print(f"pairs {done}/{total} ({time.perf_counter() - started:.0f} s)")

        def log(phase: str, step: int, total: int, loss: float) -> None:
            progress.update(train_task, completed=step, description=f"train student {loss:.4f}")
            if not console.is_terminal and (step % LOG_EVERY == 0 or step == total):
                console.print(f"{phase} step {step}/{total} loss {loss:.4f}")

        student, history = run_distillation(
            model,
            name,
            controls,
            prompt_embeds,
            negative,
            schedule,
            pairs_dir,
            checkpoint,
            log,
            on_block,
            resume=resume,
            checkpoint_every_s=60 * checkpoint_minutes,
        )
        wall = time.perf_counter() - started

    # As train-default writes its models (the teacher is not used again).
    for module in (student.transformer, student.vae, *student.branches.values()):
        half_precision(module)
    student.save_pretrained(out, parts_from=teacher_dir if share_teacher_parts else None)
    losses = history.losses["student"]
    record = {
        "teacher": name,
        "schedule": {**pair_settings, "steps": steps, "train_steps": train_steps, "lr": lr},
        "batch": batch,
        "device": device,
        "seconds": {"this_run": wall, **history.seconds},
        "final_loss": float(np.mean(losses[-50:])),
        "losses": history.losses,
    }
    write_bytes_atomic(workdir / "history.json", json.dumps(record).encode(), workdir)
    plot_losses(history.losses, workdir / "loss.png")
    shutil.rmtree(check_inside(checkpoint, workdir), ignore_errors=True)
    seconds = history.seconds["student"]
    console.print(
        f"student: {len(losses)} steps in {seconds:.0f} s ({1000 * seconds / len(losses):.0f} "
        f"ms/step), final loss {record['final_loss']:.4f}; this run took {wall:.0f} s"
    )
    console.print(
        f"student written to [bold]{out}[/]: samples in "
        f"{', '.join(map(str, student.student.steps))} step(s), guidance 0; "
        f"loss curve in {workdir / 'loss.png'}"
    )
