"""Does the default model do transfer? Control adherence, prompts and weight maps, measured
on procedural layouts it never saw in training (seeds from data.HELD_OUT_SEED on).

    python bench/fidelity.py [--scenes 3] [--steps 12] [--guidance 3] [--guide-controls]
                             [--model default] [--no-targets] [--codec-only] [--workdir DIR]

--model takes "default" or a model folder (what train-default writes). --workdir keeps
the held-out layouts' captures and renders between runs (default: a temporary folder).

The defaults are the demo's sampling settings (12 steps, guidance 3); --guide-controls
runs the unguided pass without the controls (the spec's model.guide_controls).

Needs the capture extra (the layouts are captured as users capture them), and the train
extra (bpy) for the ground-truth row. Prints, averaged over scenes and conditions:

- Edge F1 and Blur SSIM of the output against the input clip with all four controls at
  weight 1, with every weight at 0 (prompt only) and for the untrained model; and of the
  Cycles render of the same layout under each condition, what the model is trained to
  produce: the ceiling of these metrics on this data; and of that render through the
  model's VAE alone, the ceiling of any model built on that codec, with its PSNR and
  its Edge F1 frame by frame (both skipped with --no-targets; --codec-only prints these
  two rows alone, in seconds, to compare codecs before the transformer is trained);
- per condition the mean luminance, and the mean absolute difference between conditions;
- the change when edge and seg weights are 0 in the left half: inside vs outside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bridge_core.controls.build import build_control_stack
from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.demo import DEMO_STEPS
from bridge_core.run.metrics import MetricReference, edge_f1
from bridge_core.run.models import resolve_model
from bridge_core.run.protocol import SamplingSettings
from bridge_core.spec.models import ControlSpec, ModelSpec
from bridge_core.train.data import FRAMES, HELD_OUT_SEED, build_scene, read_targets
from bridge_core.trainset.conditions import CONDITIONS
from bridge_core.weights.rules import normalise_weights

if TYPE_CHECKING:
    from transfer_model import CosmosTransferModel

# Transfer2.5-2B on its benchmark, uniform weights (DESIGN.md), for scale only: another
# model, resolution and data set.
REFERENCE = {"edge_f1": 0.41, "blur_ssim": 0.87}


def held_out_clip(
    workdir: Path, seed: int, size: int, targets: bool
) -> tuple[ControlStack, np.ndarray, dict[str, np.ndarray]]:
    """Capture layout ``seed`` (and render it with Cycles under every condition when
    ``targets``): its default controls, its rgb [T, H, W, 3] uint8, condition -> render."""
    from bridge_core.capture.capture import capture_scene
    from bridge_core.trainset.layouts import CAMERA, write_layout

    renders = {}
    if targets:
        folder = build_scene(workdir, seed, (size, size), list(CONDITIONS))
        capture = folder / "capture"
        renders = {name: read_targets(folder, name) for name in CONDITIONS}
    else:
        stage = workdir / f"{seed}.usda"
        write_layout(stage, seed, FRAMES)
        capture = workdir / str(seed)
        capture_scene(stage, [CAMERA], capture, resolution=(size, size))
    (clip,) = open_dataset(capture).clips()
    stack = build_control_stack(clip, {name: ControlSpec() for name in CONTROL_NAMES})
    return stack, clip.stack("rgb")[..., :3], renders


def reweighted(stack: ControlStack, weights: dict[str, np.ndarray | float]) -> ControlStack:
    """The same controls under new raw weights (a number or a [T, H, W] map), normalised."""
    shape = stack.shape
    maps = {
        name: np.broadcast_to(np.asarray(w, dtype=np.float32), shape).copy()
        for name, w in weights.items()
    }
    return ControlStack(videos=stack.videos, weights=normalise_weights(maps))


def untrained_like(model: CosmosTransferModel) -> CosmosTransferModel:
    """A model of the same configs as ``model``, freshly initialised: the floor the
    training is measured against, whatever the model's codec and sizes."""

    def fresh(module):  # diffusers' from_config: same config, random weights
        return type(module).from_config(module.config)

    return type(model)(
        fresh(model.transformer),
        fresh(model.vae),
        {name: fresh(branch) for name, branch in model.branches.items()},
        model.scheduler,
        model.frames_per_chunk,
        origin="project",
        prompt_cache=model.prompt_cache,
    )


def luminance(frames: np.ndarray) -> float:
    """Mean Rec. 709 luma of [T, H, W, 3] uint8, 0..255."""
    return float((frames.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722])).mean())


def frame_change(frames: np.ndarray) -> float:
    """Mean |difference| of consecutive frames of [T, H, W, 3] uint8, 0..255."""
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 pictures or clips, in dB."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=DEMO_STEPS)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--guide-controls", action="store_true")
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--no-targets", action="store_true", help="skip the Cycles renders (ground-truth row)"
    )
    parser.add_argument(
        "--codec-only", action="store_true", help="only the ground truth and codec rows"
    )
    parser.add_argument("--workdir", type=Path, help="keep the held-out layouts here")
    args = parser.parse_args()
    targets = not args.no_targets
    if targets and importlib.util.find_spec("bpy") is None:
        print("bpy is not installed (the train extra): no ground-truth row")
        targets = False
    if args.codec_only and not targets:
        parser.error("--codec-only needs the Cycles renders (bpy, and no --no-targets)")

    from transfer_model.cosmos.training import round_trip

    model = resolve_model(ModelSpec(id=args.model)).model
    untrained = untrained_like(model)
    settings = SamplingSettings(
        num_steps=args.steps, guidance=args.guidance, guide_controls=args.guide_controls
    )
    prompts = {name: c.prompt for name, c in CONDITIONS.items()}
    scores: dict[str, list[float]] = {}
    lum: dict[str, list[float]] = {name: [] for name in prompts}
    pair_diff: list[float] = []
    region_in, region_out = [], []
    flicker: list[float] = []
    codec_psnr: list[float] = []
    codec_frames: list[list[float]] = []

    def add(key: str, value: float) -> None:
        scores.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        for i in range(args.scenes):
            seed = HELD_OUT_SEED + i
            stack, rgb, renders = held_out_clip(workdir, seed, args.size, targets)
            reference = MetricReference.of(rgb)
            for render in renders.values():
                for metric, value in reference.scores(render).items():
                    add(f"ground truth {metric}", value)
                through_vae = round_trip(model.vae, render[None], model.frames_per_chunk)[0]
                for metric, value in reference.scores(through_vae).items():
                    add(f"ground truth via VAE {metric}", value)
                codec_psnr.append(psnr(through_vae, render))
                codec_frames.append(
                    [edge_f1(rgb[t : t + 1], through_vae[t : t + 1]) for t in range(len(rgb))]
                )
            if args.codec_only:
                continue
            uniform = reweighted(stack, dict.fromkeys(CONTROL_NAMES, 1.0))
            prompt_only = reweighted(stack, dict.fromkeys(CONTROL_NAMES, 0.0))
            outputs = {}
            for name, prompt in prompts.items():
                outputs[name] = model.generate(uniform, prompt, None, seed, settings)
                lum[name].append(luminance(outputs[name]))
                if name in renders:
                    flicker.append(frame_change(outputs[name]) / frame_change(renders[name]))
                for metric, value in reference.scores(outputs[name]).items():
                    add(f"uniform {metric}", value)
                blind = model.generate(prompt_only, prompt, None, seed, settings)
                for metric, value in reference.scores(blind).items():
                    add(f"prompt-only {metric}", value)
                random_out = untrained.generate(uniform, prompt, None, seed, settings)
                for metric, value in reference.scores(random_out).items():
                    add(f"untrained {metric}", value)
            for a, b in itertools.combinations(outputs.values(), 2):
                pair_diff.append(float(np.abs(a.astype(np.int16) - b).mean()))

            # Edge and seg off in the left half: that half should move more.
            half = np.ones(stack.shape, dtype=np.float32)
            half[:, :, : stack.shape[2] // 2] = 0.0
            masked = reweighted(stack, {"edge": half, "seg": half, "depth": 1.0, "blur": 1.0})
            changed = model.generate(masked, prompts["daylight"], None, seed, settings)
            delta = np.abs(changed.astype(np.int16) - outputs["daylight"]).mean(axis=-1)
            region_in.append(float(delta[:, :, : stack.shape[2] // 2].mean()))
            region_out.append(float(delta[:, :, stack.shape[2] // 2 :].mean()))
            print(f"scene {seed}: done", flush=True)

    mean = {key: float(np.mean(values)) for key, values in scores.items()}
    print(
        f"\n{args.scenes} held-out layouts, {args.size}x{args.size}, {FRAMES} frames, "
        f"{args.steps} steps, guidance {args.guidance}"
        f"{' (controls guided)' if args.guide_controls else ''}, model {args.model!r}"
    )
    print(f"{'':24s}{'Edge F1':>10s}{'Blur SSIM':>11s}")
    settings_measured = [] if args.codec_only else ["uniform", "prompt-only", "untrained"]
    if targets:
        settings_measured += ["ground truth", "ground truth via VAE"]
    for setting in settings_measured:
        print(
            f"{setting:24s}{mean[f'{setting} edge_f1']:10.3f}{mean[f'{setting} blur_ssim']:11.3f}"
        )
    print(
        f"{'Transfer2.5-2B (ref.)':24s}{REFERENCE['edge_f1']:10.2f}{REFERENCE['blur_ssim']:11.2f}"
    )
    if targets:
        per_frame = " ".join(f"{v:.3f}" for v in np.mean(codec_frames, axis=0))
        print(f"codec round trip: PSNR {np.mean(codec_psnr):.1f} dB; Edge F1 by frame {per_frame}")
    if args.codec_only:
        return
    ratio_f1 = mean["uniform edge_f1"] / max(mean["prompt-only edge_f1"], 1e-9)
    ratio_ssim = mean["uniform blur_ssim"] / max(mean["prompt-only blur_ssim"], 1e-9)
    print(f"controls vs prompt only: Edge F1 x{ratio_f1:.2f}, Blur SSIM x{ratio_ssim:.2f}")
    if targets:
        # What a perfect model (its output the Cycles render itself) would score.
        ceiling_f1 = mean["ground truth edge_f1"] / max(mean["prompt-only edge_f1"], 1e-9)
        ceiling_ssim = mean["ground truth blur_ssim"] / max(mean["prompt-only blur_ssim"], 1e-9)
        print(
            f"ground truth vs prompt only: Edge F1 x{ceiling_f1:.2f}, Blur SSIM x{ceiling_ssim:.2f}"
        )
    print("mean luminance (0-255): " + ", ".join(f"{n} {np.mean(v):.1f}" for n, v in lum.items()))
    night_drop = 1 - np.mean(lum["night"]) / np.mean(lum["daylight"])
    print(f"night vs daylight luminance: {100 * night_drop:.0f}% darker")
    print(f"mean |difference| between conditions: {np.mean(pair_diff):.1f} (0-255)")
    if flicker:
        print(
            f"frame-to-frame change, output over ground truth: {np.mean(flicker):.2f}x "
            f"(1 = moves as the render does)"
        )
    inside, outside = np.mean(region_in), np.mean(region_out)
    print(
        f"edge+seg weights 0 in the left half: mean |change| {inside:.1f} inside, "
        f"{outside:.1f} outside (ratio {inside / max(outside, 1e-9):.2f})"
    )


if __name__ == "__main__":
    main()
