"""Does a distilled student keep what its teacher does, at a fraction of the forwards?

    python bench/distill.py [--scenes 3] [--teacher default] [--student default-v3.2-4step]
                            [--teacher-steps 35,12] [--guidance 3] [--json FILE]
                            [--picture FILE]

On procedural layouts neither model saw in training (seeds from data.HELD_OUT_SEED on),
captured as users capture them, under the four lighting prompts, side by side in one
run: the teacher at each of ``--teacher-steps`` with guidance (35 is a spec's default,
12 the demo's; with guide_controls if the student's pairs were made so), and the student
at each step count it takes, without guidance. Per row:
Edge F1 and Blur SSIM of the output against the input (all four controls at weight 1),
the night / daylight mean-luminance ratio, the region ratio (edge and seg at 0 in the
left half: mean change inside over outside), wall time per clip and model evaluations
per chunk (a step of the base and its branches; guidance doubles it). --picture writes
the first layout's middle frame under each condition, one row per setting, beside the
input.

--student takes a revision of the default model or a student folder (what
`cosmos-bridge distill` writes). Needs the capture extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from fidelity import held_out_clip, luminance, reweighted

from bridge_core.controls.stack import CONTROL_NAMES
from bridge_core.run.metrics import MetricReference
from bridge_core.run.models import resolve_model
from bridge_core.run.protocol import SamplingSettings
from bridge_core.spec.models import ModelSpec
from bridge_core.train.data import FRAMES, HELD_OUT_SEED
from bridge_core.trainset.conditions import CONDITIONS


def evaluate(
    model, stacks, settings: SamplingSettings, shown: dict[str, np.ndarray]
) -> dict[str, float]:
    """One row: mean scores over every (scene, condition), ratios and time per clip;
    ``shown`` gets the first scene's middle frame per condition [H, W, 3]."""
    prompts = {name: c.prompt for name, c in CONDITIONS.items()}
    scores: dict[str, list[float]] = {"edge_f1": [], "blur_ssim": []}
    lum: dict[str, list[float]] = {name: [] for name in prompts}
    inside, outside, seconds = [], [], []
    for seed, (stack, rgb) in stacks.items():
        reference = MetricReference.of(rgb)
        uniform = reweighted(stack, dict.fromkeys(CONTROL_NAMES, 1.0))
        outputs = {}
        for name, prompt in prompts.items():
            start = time.perf_counter()
            outputs[name] = model.generate(uniform, prompt, None, seed, settings)
            seconds.append(time.perf_counter() - start)
            lum[name].append(luminance(outputs[name]))
            if name not in shown:
                shown[name] = outputs[name][len(outputs[name]) // 2]
            for metric, value in reference.scores(outputs[name]).items():
                scores[metric].append(value)
        half = np.ones(stack.shape, dtype=np.float32)
        half[:, :, : stack.shape[2] // 2] = 0.0
        masked = reweighted(stack, {"edge": half, "seg": half, "depth": 1.0, "blur": 1.0})
        changed = model.generate(masked, prompts["daylight"], None, seed, settings)
        delta = np.abs(changed.astype(np.int16) - outputs["daylight"]).mean(axis=-1)
        inside.append(float(delta[:, :, : stack.shape[2] // 2].mean()))
        outside.append(float(delta[:, :, stack.shape[2] // 2 :].mean()))
    return {
        "edge_f1": float(np.mean(scores["edge_f1"])),
        "blur_ssim": float(np.mean(scores["blur_ssim"])),
        "night_over_daylight": float(np.mean(lum["night"]) / np.mean(lum["daylight"])),
        "region_ratio": float(np.mean(inside) / max(np.mean(outside), 1e-9)),
        "seconds_per_clip": float(np.mean(seconds)),
        "evaluations_per_chunk": settings.num_steps * (2 if settings.guidance > 0 else 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--teacher", default="default")
    parser.add_argument("--student", default="default-v3.2-4step")
    parser.add_argument("--teacher-steps", default="35,12")
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path, help="keep the held-out captures here")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--picture", type=Path, help="write the side-by-side frames here")
    args = parser.parse_args()

    teacher = resolve_model(ModelSpec(id=args.teacher)).model
    if Path(args.student).is_dir():
        student_spec = ModelSpec(id=args.student, num_steps=4, guidance=0.0)
    else:
        student_spec = ModelSpec(id="default", revision=args.student, num_steps=4, guidance=0.0)
    student = resolve_model(student_spec).model
    rows: dict[str, dict[str, float]] = {}
    shown: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        stacks = {}
        (workdir / "captures").mkdir(parents=True, exist_ok=True)
        for i in range(args.scenes):
            seed = HELD_OUT_SEED + i
            stack, rgb, _ = held_out_clip(workdir / "captures", seed, args.size, targets=False)
            stacks[seed] = (stack, rgb)
        for steps in (int(s) for s in args.teacher_steps.split(",")):
            # As the student's pairs were made.
            guide_controls = student.student.teacher_guide_controls
            settings = SamplingSettings(
                num_steps=steps, guidance=args.guidance, guide_controls=guide_controls
            )
            name = f"teacher {steps} steps"
            rows[name] = evaluate(teacher, stacks, settings, shown.setdefault(name, {}))
            print(f"teacher {steps} steps: done", flush=True)
        for steps in student.student.steps:
            settings = SamplingSettings(num_steps=steps, guidance=0.0)
            name = f"student {steps} steps"
            rows[name] = evaluate(student, stacks, settings, shown.setdefault(name, {}))
            print(f"student {steps} steps: done", flush=True)

    print(
        f"\n{args.scenes} held-out layouts x {len(CONDITIONS)} conditions, "
        f"{args.size}x{args.size}, {FRAMES} frames; teacher {args.teacher!r} (guidance "
        f"{args.guidance:g}, guide_controls {student.student.teacher_guide_controls}), "
        f"student {args.student!r} (of {student.student.teacher}, "
        f"{student.student.method})"
    )
    header = ("Edge F1", "Blur SSIM", "night/day", "region", "s/clip", "evals/chunk")
    print(f"{'':20s}" + "".join(f"{h:>12s}" for h in header))
    for name, row in rows.items():
        values = [
            f"{row['edge_f1']:.3f}",
            f"{row['blur_ssim']:.3f}",
            f"{row['night_over_daylight']:.2f}",
            f"{row['region_ratio']:.2f}",
            f"{row['seconds_per_clip']:.1f}",
            str(row["evaluations_per_chunk"]),
        ]
        print(f"{name:20s}" + "".join(f"{v:>12s}" for v in values))
    first = next(iter(rows.values()))
    for name, row in rows.items():
        if name.startswith("student"):
            print(
                f"{name} vs {next(iter(rows))}: Edge F1 {row['edge_f1'] / first['edge_f1']:.0%}, "
                f"Blur SSIM {row['blur_ssim'] / first['blur_ssim']:.0%}, night/day "
                f"{row['night_over_daylight'] - first['night_over_daylight']:+.2f}, region "
                f"{row['region_ratio'] / first['region_ratio']:.0%}, evaluations 1/"
                f"{first['evaluations_per_chunk'] / row['evaluations_per_chunk']:.1f}, time 1/"
                f"{first['seconds_per_clip'] / row['seconds_per_clip']:.1f}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.picture:
        first_rgb = next(iter(stacks.values()))[1]
        write_picture(args.picture, first_rgb[len(first_rgb) // 2], shown)


def write_picture(path: Path, rgb: np.ndarray, shown: dict[str, dict[str, np.ndarray]]) -> None:
    """Rows of frames [H, W, 3] (input, then one per condition), 2x, labelled."""
    import cv2

    def cell(frame: np.ndarray, label: str) -> np.ndarray:
        big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        bar = np.full((22, big.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        return np.vstack([bar, big])

    rows = [
        np.hstack(
            [cell(rgb, "input" if not i else "")]
            + [cell(f, f"{name}: {c}") for c, f in row.items()]
        )
        for i, (name, row) in enumerate(shown.items())
    ]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
