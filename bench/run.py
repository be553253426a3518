"""Milliseconds per frame the run loop itself spends at 1280x704, split by stage.

    python bench/run.py [--frames 8] [--repeats 3]

Runs the real loop (bridge_core.run.loop.run_job) on a 1280x704 BasicWriter dataset
made from the real YCB frames (bench/controls.py's), one variation, all four controls
with a class-rule weight map, and a model that returns grey frames at once, so what is
timed is everything but the model's forward passes: reading, controls and maps, fitting,
writing frames and label links and the manifest, metrics, and the clip's report
(contact sheet, mp4 preview). Target: at most 35 ms per frame on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from controls import RESOLUTION, make_dataset

from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.memory import reuse_freed_memory
from bridge_core.run.loop import run_job
from bridge_core.run.models import ResolvedModel
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.load import parse_job_spec

STAGES = ("read", "controls", "fit", "write", "metrics", "report")


class BlurModel:
    """Takes any size and clip; returns its blur control as the frames, computing nothing.

    Picture-like content, so PNG encoding costs what it costs on real outputs.
    """

    requirements = ModelRequirements(
        resolution_multiple=16, frames_per_chunk=93, supported_controls=CONTROL_NAMES
    )

    def generate(
        self, controls: ControlStack, prompt, negative_prompt, seed: int, settings: SamplingSettings
    ) -> np.ndarray:
        return (controls.videos["blur"] * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reuse_freed_memory()  # as the cosmos-bridge command does (bridge_core/memory.py)
    rule = {"rules": [{"classes": ["banana", "*_can"], "value": 1.0}], "weight": 0.5}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "bench", args.frames)
        spec = parse_job_spec(
            {
                "input": {"dataset": str(root)},
                "controls": {"edge": rule, "depth": {}, "seg": {}, "blur": {}},
                "variations": [{"name": "grey", "prompt": "grey"}],
            }
        )
        model = ResolvedModel(BlurModel(), "blur-as-output")
        runs = [run_job(spec, model, force=True).stage_seconds for _ in range(args.repeats)]
    # The fastest run of each stage is the one least disturbed by the rest of the machine.
    best = {s: min(r.get(s, 0.0) for r in runs) / args.frames * 1e3 for s in STAGES}
    w, h = RESOLUTION
    print(f"{os.cpu_count()} cores; {w}x{h}, one clip of {args.frames} frames, 1 variation, ")
    print(f"best of {args.repeats}; the model's forward passes excluded")
    for stage, ms in best.items():
        print(f"  {stage:<9} {ms:6.1f} ms/frame")
    print(f"  total     {sum(best.values()):6.1f} ms/frame (target <= 35)")


if __name__ == "__main__":
    main()
