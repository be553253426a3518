"""Milliseconds per frame the run loop itself spends at 1280x704, split by stage.

    python bench/run.py [--frames 36] [--clip-length 9] [--repeats 3] [--gpu-ms MS]

Runs the real loop (bridge_core.run.loop.run_job) on a 1280x704 BasicWriter dataset
made from the real YCB frames (bench/controls.py's), one variation, all four controls
with a class-rule weight map, and a model that returns its blur control as the frames
(about 1 ms a frame), so what is timed is everything but the model's forward passes:
reading, controls and maps, fitting, writing frames and label links and the manifest,
metrics, and the clip's report (contact sheet, mp4 preview). By default a run of
several clips of 9 frames, the default model's chunk, so that writing a clip overlaps
reading the next as in any real run (--clip-length 0: the whole run in one clip). The
figure against the target is the run's wall-clock time less the model's: at most 35 ms
per frame on a 2-core machine.

With --gpu-ms the model stands in for one on a GPU: it waits that long per frame,
leaving the CPU free, and says so, so the loop builds the next clip's controls
meanwhile. The whole run's time per frame is printed too; the bridge's is then what the
model's time does not hide.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
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
    """Takes any size and clip; returns its blur control as the frames, computing nothing
    (or waiting ``gpu_ms`` per frame, as a model on a GPU leaves the CPU free).

    Picture-like content, so PNG encoding costs what it costs on real outputs.
    """

    def __init__(self, gpu_ms: float = 0.0):
        self.gpu_ms = gpu_ms
        self.requirements = ModelRequirements(
            resolution_multiple=16,
            frames_per_chunk=93,
            supported_controls=CONTROL_NAMES,
            leaves_cpu_free=gpu_ms > 0,
        )

    def generate(
        self, controls: ControlStack, prompt, negative_prompt, seed: int, settings: SamplingSettings
    ) -> np.ndarray:
        time.sleep(self.gpu_ms / 1000 * controls.shape[0])
        # OpenCV's vectorised conversion: the stand-in's own CPU time, subtracted as the
        # model's, stays a millisecond a frame (numpy's takes four).
        blur = controls.videos["blur"]
        frames = np.empty(blur.shape, np.uint8)
        for t in range(len(blur)):
            cv2.convertScaleAbs(blur[t], dst=frames[t], alpha=255)
        return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-ms", type=float, default=0.0, help="model time per frame")
    parser.add_argument("--clip-length", type=int, default=9, help="0: one clip")
    args = parser.parse_args()
    reuse_freed_memory()  # as the cosmos-bridge command does (bridge_core/memory.py)
    rule = {"rules": [{"classes": ["banana", "*_can"], "value": 1.0}], "weight": 0.5}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "bench", args.frames)
        spec = parse_job_spec(
            {
                "input": {"dataset": str(root), "clip_length": args.clip_length or None},
                "controls": {"edge": rule, "depth": {}, "seg": {}, "blur": {}},
                "variations": [{"name": "grey", "prompt": "grey"}],
            }
        )
        model = ResolvedModel(BlurModel(args.gpu_ms), "blur-as-output")
        runs = [run_job(spec, model, force=True) for _ in range(args.repeats)]
    # The fastest run of each stage is the one least disturbed by the rest of the machine.
    per_frame = 1e3 / args.frames
    best = {s: min(r.stage_seconds.get(s, 0.0) for r in runs) * per_frame for s in STAGES}
    # What the bridge adds to a run: its wall-clock time less the model's forward passes.
    # Stages overlap (a clip is written while the next is read and generated), so this
    # is less than the stages' sum; with --gpu-ms, most of it hides behind the model.
    bridge = min((r.seconds - r.stage_seconds.get("model", 0.0)) for r in runs) * per_frame
    model = min(r.stage_seconds.get("model", 0.0) for r in runs) * per_frame
    w, h = RESOLUTION
    clips = f"clips of {args.clip_length}" if args.clip_length else "one clip"
    print(f"{os.cpu_count()} cores; {w}x{h}, {args.frames} frames in {clips}, 1 variation, ")
    print(f"best of {args.repeats}; time per frame in each stage (stages overlap):")
    for stage, ms in best.items():
        print(f"  {stage:<9} {ms:6.1f} ms/frame")
    print(f"  sum       {sum(best.values()):6.1f} ms/frame")
    print(f"  (model    {model:6.1f} ms/frame: the stand-in's own time, not the bridge's)")
    if args.gpu_ms:
        wall = min(r.seconds for r in runs) * per_frame
        print(f"whole run with a {args.gpu_ms:.0f} ms/frame model: {wall:.1f} ms/frame")
    print(f"bridge's time per frame (run less model): {bridge:6.1f} ms (target <= 35)")


if __name__ == "__main__":
    main()
