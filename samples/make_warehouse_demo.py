"""Make samples/datasets/warehouse_demo: the demo's clip, a procedural warehouse layout that the
default model never saw in training, captured headless as users capture their scenes.

One camera (so BasicWriter's flat layout), 9 frames at 128x128: one chunk of the default
model at the size it was trained at. Needs the capture extra (usd-core, warp-lang).

Usage::

    python samples/make_warehouse_demo.py [--out samples/datasets/warehouse_demo]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bridge_core.capture.capture import capture_scene
from bridge_core.train.data import FRAMES, HELD_OUT_SEED
from bridge_core.trainset.layouts import CAMERA, write_layout

DEFAULT_OUT = Path(__file__).resolve().parent / "datasets" / "warehouse_demo"
# Held out, and apart from bench/fidelity.py's layouts (HELD_OUT_SEED + 0, 1, ...).
DEMO_SEED = HELD_OUT_SEED + 500
SIZE = (128, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "layout.usda"
        write_layout(stage, DEMO_SEED, FRAMES)
        shutil.rmtree(args.out, ignore_errors=True)
        capture_scene(stage, [CAMERA], args.out, resolution=SIZE)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
