"""A job's throughput on Ray with 1, 2 and 4 workers, and Ray's overhead per item.

    python bench/ray_scale.py [--gpu-ms 200] [--frames 48] [--clip-length 4]
                              [--variations 2] [--size 320x176] [--workers 1,2,4]

The model stands in for one on a GPU (bench/run.py's BlurModel with --gpu-ms): it waits
that long per frame and leaves the CPU free, so a 2-core machine can hold four of them,
as four GPUs would. The dataset is bench/controls.py's (real YCB frames, resized to
--size: small, so that the workers' own CPU work, controls and PNGs, does not crowd two
cores). Each figure is the run's time inside the run folder (plan, items, writing,
run.json), the workers already started; their start-up is printed apart.

Printed: frames per second per pool size, scaling efficiency (throughput at N workers
over N times the throughput at 1), the same job in one process without Ray, and Ray's
overhead per item (the 1-worker run less the in-process one, per item) against an item's
model time. Targets: efficiency at 4 workers >= 85%, overhead < 5% of an item at 200 ms
per frame.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

from controls import make_dataset
from run import BlurModel

from bridge_core.run.distributed import run_job_on_ray
from bridge_core.run.loop import run_job
from bridge_core.run.models import ResolvedModel
from bridge_core.spec.load import parse_job_spec
from bridge_core.spec.models import RaySpec

BENCH = Path(__file__).resolve().parent


def blur_model(gpu_ms: float) -> ResolvedModel:
    """What each worker loads: the stand-in, waiting ``gpu_ms`` a frame."""
    return ResolvedModel(BlurModel(gpu_ms), "blur-as-output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-ms", type=float, default=200.0, help="model time per frame")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--clip-length", type=int, default=4)
    parser.add_argument("--variations", type=int, default=2)
    parser.add_argument("--size", default="320x176", help="WxH of the dataset's frames")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    import ray

    pools = [int(n) for n in args.workers.split(",")]
    w, h = (int(v) for v in args.size.split("x"))
    # Logical CPUs: the stand-in model waits, it does not compute, so each worker
    # reserves one as a GPU worker would reserve its GPU.
    ray.init(
        num_cpus=max(pools),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(BENCH), str(BENCH.parent)])}},
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "bench", args.frames, (w, h))
        spec = parse_job_spec(
            {
                "input": {"dataset": str(root), "clip_length": args.clip_length},
                "controls": {"edge": {}, "depth": {}, "seg": {}, "blur": {}},
                "variations": [
                    {"name": f"v{i}", "prompt": f"prompt {i}", "seed": i}
                    for i in range(args.variations)
                ],
            }
        )
        frames = args.frames * args.variations
        items = -(-args.frames // args.clip_length) * args.variations
        local = run_job(spec, blur_model(args.gpu_ms), force=True)
        rows = []
        for n in pools:
            began = time.perf_counter()
            result = run_job_on_ray(
                spec,
                functools.partial(blur_model, args.gpu_ms),
                force=True,
                ray_spec=RaySpec(workers=n),
            )
            total = time.perf_counter() - began
            rows.append((n, result.seconds, total - result.seconds))
    ray.shutdown()

    model_s = frames * args.gpu_ms / 1000
    print(
        f"{os.cpu_count()} cores; {w}x{h}, {args.frames} frames in clips of "
        f"{args.clip_length}, {args.variations} variations: {items} items, {frames} frames; "
        f"stand-in model {args.gpu_ms:.0f} ms/frame ({model_s:.1f} s of model time in all)"
    )
    print(f"in one process, no Ray: {local.seconds:6.2f} s, {frames / local.seconds:5.2f} frames/s")
    one = rows[0][1] if rows[0][0] == 1 else None
    print("workers   seconds   frames/s   efficiency   (start-up)")
    for n, seconds, startup in rows:
        efficiency = f"{one / (n * seconds):10.0%}" if one else "         -"
        rate = frames / seconds
        print(f"{n:7d}   {seconds:7.2f}   {rate:8.2f}   {efficiency}   ({startup:.1f} s)")
    if one:
        item_s = args.clip_length * args.gpu_ms / 1000
        for what, baseline in (("in-process", local.seconds), ("the model's time", model_s)):
            overhead = (one - baseline) / items
            print(
                f"Ray's overhead per item, 1 worker less {what}: {overhead * 1e3:6.1f} ms, "
                f"{overhead / item_s:.1%} of an item's {item_s * 1e3:.0f} ms (target < 5%)"
            )


if __name__ == "__main__":
    main()
