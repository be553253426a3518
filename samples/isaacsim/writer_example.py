"""Standalone Replicator capture with CosmosTransferWriter: a scene, a camera, the writer.

Run with Isaac Sim's Python after installing the package into it (see README.md):

    python.sh samples/isaacsim/writer_example.py --out /tmp/cosmos_live --frames 10

Ground truth lands in --out in BasicWriter layout; the generated variation in
--out/cosmos_transfer/run/sunny/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from isaacsim import SimulationApp

EXTS = Path(__file__).resolve().parents[2] / "exts"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("_out_cosmos_transfer"))
parser.add_argument("--frames", type=int, default=10)
parser.add_argument("--model", default="default", help="default, tiny, a hub id or a folder")
args = parser.parse_args()

# SimulationApp must exist before any omni import; the extension registers
# CosmosTransferWriter when it starts.
EXT_ARGS = ["--ext-folder", str(EXTS), "--enable", "cosmos.transfer.bridge"]
app = SimulationApp({"headless": True, "extra_args": EXT_ARGS})

import omni.replicator.core as rep  # noqa: E402

with rep.new_layer():
    rep.create.light(light_type="Distant", intensity=3000, rotation=(315, 0, 0))
    rep.create.plane(scale=10, semantics=[("class", "floor")])
    for i, label in enumerate(("pallet", "box", "barrel")):
        rep.create.cube(position=(i * 1.5 - 1.5, 0, 0.5), semantics=[("class", label)])
    camera = rep.create.camera(position=(0, -6, 3), look_at=(0, 0, 0.5))
    render_product = rep.create.render_product(camera, (1280, 704))

writer = rep.WriterRegistry.get("CosmosTransferWriter")
writer.initialize(
    output_dir=str(args.out.resolve()),
    controls={"edge": {"weight": 0.5}, "depth": {"weight": 0.5}, "seg": {"weight": 0.3}},
    variations=[
        {"name": "sunny", "prompt": "A photorealistic warehouse in warm sunlight", "seed": 1}
    ],
    model={"id": args.model},
)
writer.attach([render_product])

rep.orchestrator.set_capture_on_play(False)
for _ in range(args.frames):
    rep.orchestrator.step(rt_subframes=4)
rep.orchestrator.wait_until_complete()
writer.detach()  # finishes the last clip and waits for generation
app.close()
