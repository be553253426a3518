"""Does the quality gate keep good clips and stop broken ones? Its accept rate on both,
and what its checks cost per frame.

    python bench/quality.py [--layouts 8] [--first-layout 8] [--steps 12] [--model default]
                            [--workdir DIR] [--json FILE]

Good clips: the model's output for procedural layouts it never saw in training (seeds
from data.HELD_OUT_SEED + first-layout on; the defaults were set on the first 8, so the
default run judges 8 others), captured as users capture them, under each of its four
lighting prompts, with the controls `cosmos-bridge init` writes. Broken clips, three per
good one: the output of another layout judged against this one (controls of another
clip), the output with every control weight 0 (prompt only), and uniform noise. Each is
judged by the gate at the spec's default thresholds at its first try (the scores' spread
per kind is printed to set those defaults), then as a run judges it: tried again with
the gate's seeds up to the spec's retries. Needs the capture extra.

The checks' time per frame is the gate's own work (object boundaries and their band,
label agreement, frame changes) beside the Edge F1 and Blur SSIM every run computes, at
the bench's size and on a 93-frame 1280x704 clip, the reference model's chunk.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import yaml

from bridge_core.controls.build import build_control_stack
from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB, SEMANTIC
from bridge_core.demo import DEMO_STEPS
from bridge_core.quality.checks import boundary_band
from bridge_core.quality.gate import SCORE_NAMES, ClipJudge, Judged, attempt_seed
from bridge_core.run.fit import fit_back, fit_controls, plan_fit
from bridge_core.run.metrics import MetricReference
from bridge_core.run.models import resolve_model
from bridge_core.run.protocol import SamplingSettings
from bridge_core.run.starter import starter_spec
from bridge_core.spec.load import parse_job_spec
from bridge_core.spec.models import ModelSpec, QualitySpec
from bridge_core.train.data import FRAMES, HELD_OUT_SEED
from bridge_core.trainset.conditions import CONDITIONS

KINDS = ("good", "other_controls", "weights_0", "noise")


def layout_clip(workdir: Path, seed: int, size: int):
    """Capture layout ``seed`` (its rgb and segmentation loaded) and its starter controls."""
    from bridge_core.capture.capture import capture_scene
    from bridge_core.trainset.layouts import CAMERA, write_layout

    stage = workdir / f"{seed}.usda"
    capture = workdir / str(seed)
    if not capture.is_dir():
        write_layout(stage, seed, FRAMES)
        capture_scene(stage, [CAMERA], capture, resolution=(size, size))
    spec = yaml.safe_load(starter_spec(capture, workdir / f"{seed}.yaml"))
    controls = parse_job_spec(spec, workdir).controls
    (clip,) = open_dataset(capture).clips()
    stack = build_control_stack(clip, controls)
    return clip, stack


def judge_of(clip, quality: QualitySpec) -> ClipJudge:
    """The gate's input side of a clip, as the run builds it."""
    reference = MetricReference.of(clip.stack(RGB)[..., :3])
    band = boundary_band(clip.stack(SEMANTIC), reference.blurred.shape[1:3])
    return ClipJudge(quality, reference, band)


def zero_weights(stack: ControlStack) -> ControlStack:
    return ControlStack(stack.videos, {n: np.zeros_like(w) for n, w in stack.weights.items()})


def check_seconds_per_frame(frames: np.ndarray, ids: np.ndarray, quality: QualitySpec) -> float:
    """The gate's own checks on a clip [T,H,W,3] uint8 with segment ids [T,H,W], per frame:
    judging less the Edge F1 and Blur SSIM the run computes anyway; best of 3."""
    reference = MetricReference.of(frames)
    best = np.inf
    for _ in range(3):
        began = time.perf_counter()
        band = boundary_band(ids, reference.blurred.shape[1:3])
        judge = ClipJudge(quality, reference, band)
        judge.judge(frames)
        total = time.perf_counter() - began
        began = time.perf_counter()
        reference.scores(frames)
        best = min(best, total - (time.perf_counter() - began))
    return best / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layouts", type=int, default=8)
    parser.add_argument("--first-layout", type=int, default=8, help="after HELD_OUT_SEED")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=DEMO_STEPS)
    parser.add_argument("--model", default="default")
    parser.add_argument("--workdir", type=Path, help="keep the captured layouts here")
    parser.add_argument("--json", type=Path, help="write every clip's scores here")
    args = parser.parse_args()
    quality = QualitySpec(enabled=True)  # the default thresholds, judged (the gate is opt-in)
    resolved = resolve_model(ModelSpec(id=args.model))
    model = resolved.model
    settings = SamplingSettings(num_steps=args.steps, guidance=3.0)
    tried: dict[str, list[list[Judged]]] = {kind: [] for kind in KINDS}
    conditions: list[str] = []  # of each clip, in the same order for every kind
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        clips = [
            layout_clip(workdir, HELD_OUT_SEED + args.first_layout + i, args.size)
            for i in range(args.layouts)
        ]
        judges = [judge_of(clip, quality) for clip, _ in clips]
        outputs: dict[tuple[int, str, int], np.ndarray] = {}  # good clips: layout, prompt, seed

        def generate(stack: ControlStack, prompt: str, seed: int) -> np.ndarray:
            fit = plan_fit(stack.shape[1:], model.requirements)
            frames = model.generate(fit_controls(stack, fit), prompt, None, seed, settings)
            return fit_back(np.asarray(frames), fit)

        def good(i: int, prompt: str, seed: int) -> np.ndarray:
            if (i, prompt, seed) not in outputs:
                outputs[i, prompt, seed] = generate(clips[i][1], prompt, seed)
            return outputs[i, prompt, seed]

        def tries(make: Callable[[int], np.ndarray], seed: int, judge: ClipJudge) -> list[Judged]:
            """A clip judged as a run judges it: tried with the gate's seeds until it is
            accepted or the spec's retries are spent."""
            judged = []
            for attempt in range(quality.retries + 1):
                judged.append(judge.judge(make(attempt_seed(seed, attempt))))
                if judged[-1].verdict.accepted:
                    break
            return judged

        def noise(seed: int) -> np.ndarray:
            shape = (FRAMES, args.size, args.size, 3)
            return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)

        began = time.perf_counter()
        for i, (_, stack) in enumerate(clips):
            judge, zero = judges[i], zero_weights(stack)
            for c, condition in enumerate(CONDITIONS.values()):
                seed, prompt = 1000 * i + c, condition.prompt
                conditions.append(condition.name)
                tried["good"].append(tries(partial(good, i, prompt), seed, judge))
                tried["weights_0"].append(tries(partial(generate, zero, prompt), seed, judge))
                tried["noise"].append(tries(noise, seed, judge))
            print(f"layout {i + 1}/{args.layouts}: {time.perf_counter() - began:.0f} s")
        for i in range(args.layouts):
            other = (i + 1) % args.layouts
            for c, condition in enumerate(CONDITIONS.values()):
                make = partial(good, other, condition.prompt)
                tried["other_controls"].append(tries(make, 1000 * other + c, judges[i]))
        ids = clips[0][0].stack(SEMANTIC)
        small = check_seconds_per_frame(good(0, CONDITIONS["daylight"].prompt, 0), ids, quality)
    judged = {kind: [t[0] for t in tried[kind]] for kind in KINDS}  # each clip's first try
    kept = {kind: np.mean([t[-1].verdict.accepted for t in tried[kind]]) for kind in KINDS}

    print(f"\nmodel {args.model!r}, {args.steps} steps, {args.size}x{args.size}, {FRAMES} frames")
    print("default thresholds:", quality.model_dump(exclude={"critic", "enabled"}))
    header = "  ".join(f"{s:>22}" for s in SCORE_NAMES)
    print(f"\n{'clips':<15} {'n':>3} {'accepted':>9}  {header}")
    spread = "  ".join(f"{'min / median / max':>22}" for _ in SCORE_NAMES)
    print(f"{'':<15} {'':>3} {'':>9}  {spread}")
    for kind in KINDS:
        rows = judged[kind]
        accepted = np.mean([j.verdict.accepted for j in rows])
        cells = []
        for score in SCORE_NAMES:
            values = [j.scores[score] for j in rows if j.scores[score] is not None]
            low, mid, high = np.percentile(values, [0, 50, 100]) if values else (np.nan,) * 3
            cells.append(f"{low:6.3f} /{mid:6.3f} /{high:6.3f}")
        cells_text = "  ".join(f"{c:>22}" for c in cells)
        print(f"{kind:<15} {len(rows):>3} {accepted:>9.0%}  {cells_text}")
    broken = [j for kind in KINDS[1:] for j in judged[kind]]
    print(
        f"\ngood clips accepted: {np.mean([j.verdict.accepted for j in judged['good']]):.0%} "
        f"(target >= 95%); broken rejected: "
        f"{np.mean([not j.verdict.accepted for j in broken]):.0%} (target >= 95%), at the "
        "first try"
    )
    print(
        f"within retries: {quality.retries}: good clips kept {kept['good']:.0%}, broken ones "
        f"stopped {1 - np.mean([kept[kind] for kind in KINDS[1:]]):.0%} "
        f"({', '.join(f'{kind} {kept[kind]:.0%} kept' for kind in KINDS[1:])})"
    )
    for kind in KINDS:
        reasons = [r.split(" ")[0] for j in judged[kind] for r in j.verdict.reasons]
        counts = {s: reasons.count(s) for s in SCORE_NAMES if reasons.count(s)}
        by_condition = {
            name: np.mean(
                [
                    j.verdict.accepted
                    for j, c in zip(judged[kind], conditions, strict=True)
                    if c == name
                ]
            )
            for name in CONDITIONS
        }
        accepted = ", ".join(f"{name} {rate:.0%}" for name, rate in by_condition.items())
        print(f"  {kind}: accepted {accepted}; failed checks {counts}")
    if args.json is not None:
        rows = {
            kind: [
                {"condition": c, **j.scores} for j, c in zip(judged[kind], conditions, strict=True)
            ]
            for kind in KINDS
        }
        args.json.write_text(json.dumps(rows, indent=1))

    # The reference model's chunk at 1280x704: a frame shifted along, its labels blocks.
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (704 // 8, 1280 // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    frames = np.stack([np.roll(big, 2 * t, axis=1) for t in range(93)])
    big_ids = (frames[..., 0] // 64).astype(np.int32)
    large = check_seconds_per_frame(frames, big_ids, quality)
    print(
        f"\nchecks' own time per frame: {small * 1e3:.2f} ms at {args.size}x{args.size}, "
        f"{large * 1e3:.2f} ms at 1280x704 (93 frames)"
    )


if __name__ == "__main__":
    main()
