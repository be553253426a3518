"""Frames per second of headless capture: the sample warehouse scene, all outputs.

    python bench/capture.py [--resolution 1280x704] [--frames 8] [--device cpu]

Casts and writes everything `cosmos-bridge capture` writes (rgb, both depths, semantic
and instance segmentation with their json, normals, camera params) for one camera.
Target: at least 10 fps at 1280x704 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bridge_core.capture import capture_scene, read_scene
from bridge_core.capture.command import parse_resolution
from bridge_core.memory import reuse_freed_memory

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "samples/scenes/warehouse.usda"
CAMERA = "/World/Cameras/Overview"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", default="1280x704")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    reuse_freed_memory()  # as the cosmos-bridge command does (bridge_core/memory.py)
    size = parse_resolution(args.resolution)
    scene = read_scene(SCENE)
    with tempfile.TemporaryDirectory() as tmp:
        # The first frame compiles (or loads) the warp kernel: keep it out of the figure.
        capture_scene(scene, [CAMERA], Path(tmp) / "warmup", (0, 1), size, args.device)
        start = time.perf_counter()
        capture_scene(
            scene,
            [CAMERA],
            Path(tmp) / "run",
            (0, args.frames),
            size,
            args.device,
        )
        seconds = time.perf_counter() - start
    print(
        f"{os.cpu_count()} cores, device {args.device}, {size[0]}x{size[1]}, all outputs, "
        f"{args.frames} frames"
    )
    print(f"{args.frames / seconds:5.2f} frames/s ({1000 * seconds / args.frames:.0f} ms/frame)")
    print("target: >= 10 frames/s on 2 CPU cores")


if __name__ == "__main__":
    main()
