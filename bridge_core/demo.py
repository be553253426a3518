"""``cosmos-bridge demo``: the whole path on the committed sample dataset, in seconds.

Controls for every camera of ``samples/datasets/warehouse_tiny``, then (when the model
extra is installed) frames from the tiny Transfer model for one short clip. The tiny
model is RANDOM until the trained default model lands: its frames are noise that only
prove the path runs end to end, and the demo says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

import bridge_core
from bridge_core.controls.build import build_control_stack
from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB, Clip
from bridge_core.errors import InputError
from bridge_core.outputs import staged_folder, write_png
from bridge_core.report.contact_sheet import contact_sheet, pick_frames
from bridge_core.report.controls_export import export_clip
from bridge_core.run.protocol import SamplingSettings
from bridge_core.spec.models import ControlSpec

SAMPLE_DATASET = (
    Path(bridge_core.__file__).resolve().parents[1] / "samples" / "datasets" / "warehouse_tiny"
)
# Every sample camera is 8 frames long, so its first clip is the whole camera.
CLIP_LENGTH = 8
GENERATE_CAMERA = "Replicator"
# Random prompt embeddings stand in for text: the tiny model has no text encoder.
VARIATIONS = ("variation_1", "variation_2")
PROMPT_TOKENS = 8
SEED = 0
SETTINGS = SamplingSettings(num_steps=2)


@dataclass
class DemoResult:
    """What the demo wrote, all under ``workdir``.

    controls:  camera -> its exported clip folder (``export_clip``'s layout)
    generated: variation -> folder of ``rgb_NNNN.png`` frames; empty without the model
    sheet:     input | controls | variations contact sheet; None without the model
    """

    workdir: Path
    controls: dict[str, Path] = field(default_factory=dict)
    generated: dict[str, Path] = field(default_factory=dict)
    sheet: Path | None = None


def pad_to_multiple(stack: ControlStack, multiple: int) -> ControlStack:
    """Pad a stack of shape (T, H, W) at the bottom and right to H, W multiples of ``multiple``.

    Videos [T,H,W,3] repeat their edge pixels; weight maps [T,H,W] get zeros.

    Padding rather than resizing keeps every control pixel where the dataset's labels
    are, so cropping the generated frames back to (H, W) leaves boxes and masks valid
    pixel for pixel; a resize would resample segment borders and need an inverse
    resize of the output. Zero weight means no control steers the padded border, and
    edge replication keeps the branches from seeing a false edge there.
    """
    _, h, w = stack.shape
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return stack
    space = ((0, 0), (0, pad_h), (0, pad_w))
    return ControlStack(
        videos={n: np.pad(v, (*space, (0, 0)), mode="edge") for n, v in stack.videos.items()},
        weights={n: np.pad(m, space) for n, m in stack.weights.items()},
    )


def run_demo(workdir: Path, console: Console, overwrite: bool = False) -> DemoResult:
    """Write the sample dataset's controls (and, with the model extra, generated frames).

    Layout: ``controls/<camera>/clip_0000/`` per camera, ``generated/<variation>/
    rgb_NNNN.png`` ([H,W,3] at the dataset's resolution) and ``generated/contact_sheet.png``.
    A non-empty ``workdir`` is refused unless ``overwrite``, as ``cosmos-bridge controls``
    does; everything is staged and moved into place only when the demo succeeds.
    """
    if not SAMPLE_DATASET.is_dir():
        raise InputError(
            "the demo needs the sample dataset of a source checkout "
            "(git clone the project and pip install -e . from it)",
            SAMPLE_DATASET,
        )
    workdir = workdir.resolve()
    started = time.perf_counter()
    with staged_folder(workdir, overwrite) as staging:
        controls, chosen = _write_controls(staging, console)
        controls_s = time.perf_counter() - started
        result = DemoResult(workdir, {cam: workdir / p for cam, p in controls.items()})
        sheet = _generate(staging / "generated", chosen, console)
        if sheet is not None:
            result.generated = {v: workdir / "generated" / v for v in VARIATIONS}
            result.sheet = workdir / sheet.relative_to(staging)
    total_s = time.perf_counter() - started
    console.print(f"\n[bold]demo written to {escape(str(workdir))}[/]")
    # Paths are printed as plain text: a "[" in them would read as markup.
    console.print(f"  controls  {workdir / 'controls'}  ({controls_s:.1f} s)", markup=False)
    if result.sheet is not None:
        generated_s = total_s - controls_s
        console.print(f"  generated {workdir / 'generated'}  ({generated_s:.1f} s)", markup=False)
        console.print(f"  look at   {result.sheet}", markup=False)
    console.print(f"  total {total_s:.1f} s")
    return result


def _write_controls(
    out: Path, console: Console
) -> tuple[dict[str, Path], tuple[Clip, ControlStack]]:
    """Export every camera's first clip; returns camera -> folder (relative to ``out``)
    and the generation camera's clip with its stack."""
    data = open_dataset(SAMPLE_DATASET)
    specs = {name: ControlSpec() for name in CONTROL_NAMES}
    folders: dict[str, Path] = {}
    chosen: tuple[Clip, ControlStack] | None = None
    for name, camera in data.cameras.items():
        clip = camera.clips(CLIP_LENGTH)[0]
        stack = build_control_stack(clip, specs)
        folders[name] = export_clip(out / "controls", clip, stack).relative_to(out)
        if name == GENERATE_CAMERA:
            chosen = (clip, stack)
        t, h, w = stack.shape
        console.print(f"controls: {name}: {', '.join(stack.names)} for {t} frames at {w}x{h}")
    if chosen is None:
        raise InputError(f"the sample dataset has no camera {GENERATE_CAMERA!r}", SAMPLE_DATASET)
    return folders, chosen


def _generate(out: Path, chosen: tuple[Clip, ControlStack], console: Console) -> Path | None:
    """Generate each variation for the first chunk of ``chosen``; None without the model."""
    try:
        import torch

        from transfer_model import MODEL_PRESETS, CosmosTransferModel
    except ImportError as exc:
        console.print(
            f"[yellow]generation skipped[/]: the model is not installed ({escape(str(exc))}).\n"
            # Escaped: rich would take "[model]" for a style tag and print nothing.
            "  install it with: pip install -e '.\\[model]'  (then run the demo again)"
        )
        return None
    console.print(
        "[bold yellow]NOTE[/]: the default model is a RANDOM tiny model until the trained\n"
        "default model lands. Its frames are noise: they only prove that the path\n"
        "dataset -> controls -> model -> frames runs, not what the frames will look like."
    )
    # Random (not zeroed) branches, so the controls do reach the frames.
    model = CosmosTransferModel.from_preset("tiny", seed=SEED, zero_init_branches=False)
    needs = model.requirements
    clip, full = chosen
    t = min(needs.frames_per_chunk, len(clip))
    # The exported controls, cut to one model chunk.
    stack = ControlStack(
        videos={n: v[:t] for n, v in full.videos.items()},
        weights={n: m[:t] for n, m in full.weights.items()},
    )
    _, h, w = stack.shape
    padded = pad_to_multiple(stack, needs.resolution_multiple)
    g = torch.Generator().manual_seed(SEED)
    dim = MODEL_PRESETS["tiny"].text_embed_dim
    negative = torch.randn(1, PROMPT_TOKENS, dim, generator=g)
    columns: dict[str, np.ndarray] = {"input rgb": clip.stack(RGB)[:t]}
    columns.update({n: stack.videos[n] for n in stack.names})
    for variation in VARIATIONS:
        prompt = torch.randn(1, PROMPT_TOKENS, dim, generator=g)
        # The same seed for every variation: only the prompt differs between them.
        frames = model.generate(padded, prompt, negative, SEED, SETTINGS)[:, :h, :w]
        for index, frame in zip(clip.frame_indices[:t], frames, strict=True):
            write_png(out / variation / f"rgb_{index:04d}.png", frame)
        columns[variation] = frames
        console.print(f"generated: {variation}: {t} frames at {w}x{h}")
    labels = [f"#{i}" for i in clip.frame_indices[:t]]
    sheet = out / "contact_sheet.png"
    write_png(sheet, contact_sheet(columns, labels, pick_frames(t)))
    return sheet
