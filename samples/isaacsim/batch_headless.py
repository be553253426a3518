"""Headless batch: several USD scenes x several cameras through CosmosTransferWriter.

    python.sh samples/isaacsim/batch_headless.py scene_a.usd scene_b.usd \
        --cameras /World/CamA /World/CamB --frames 93 --spec samples/specs/warehouse.yaml \
        --out /data/batch

Each scene gets its own folder (--out/<scene name>) holding the ground truth of every
camera (one BasicWriter folder per render product) and the spec's variations under
cosmos_transfer/. Frames per scene come from --frames; the timeline plays and advances
one frame per capture, so animated scenes move.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from isaacsim import SimulationApp

EXTS = Path(__file__).resolve().parents[2] / "exts"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("scenes", nargs="+", type=Path, help="USD files")
parser.add_argument("--cameras", nargs="+", required=True, help="camera prim paths")
parser.add_argument("--frames", type=int, default=93, help="frames captured per scene")
parser.add_argument("--spec", type=Path, required=True, help="job spec (controls, variations)")
parser.add_argument("--out", type=Path, default=Path("_out_cosmos_batch"))
parser.add_argument("--resolution", type=int, nargs=2, default=(1280, 704), metavar=("W", "H"))
args = parser.parse_args()

# The extension registers CosmosTransferWriter when it starts.
EXT_ARGS = ["--ext-folder", str(EXTS), "--enable", "cosmos.transfer.bridge"]
app = SimulationApp({"headless": True, "extra_args": EXT_ARGS})

import carb  # noqa: E402
import omni.replicator.core as rep  # noqa: E402
import omni.timeline  # noqa: E402
import omni.usd  # noqa: E402

# Frames come from step() only; with capture-on-play off, step() does not start the
# timeline, so it is played here (as Isaac Sim's cosmos_writer_simple.py does).
rep.orchestrator.set_capture_on_play(False)
timeline = omni.timeline.get_timeline_interface()

for scene in args.scenes:
    omni.usd.get_context().open_stage(str(scene.resolve()))
    app.update()
    products = [
        rep.create.render_product(camera, tuple(args.resolution), name=f"cam{i:02d}")
        for i, camera in enumerate(args.cameras)
    ]
    writer = rep.WriterRegistry.get("CosmosTransferWriter")
    writer.initialize(output_dir=str((args.out / scene.stem).resolve()), spec=str(args.spec))
    if writer.error is not None:
        carb.log_error(f"skipping {scene}: {writer.error}")
        continue
    writer.attach(products)
    timeline.play()
    for _ in range(args.frames):
        rep.orchestrator.step(rt_subframes=4, pause_timeline=False)
    rep.orchestrator.wait_until_complete()
    timeline.stop()  # rewinds, so the next scene starts at its first frame
    writer.detach()  # the last clip, then wait for generation before the next scene
    carb.log_info(f"{scene}: {writer.status}")
    for product in products:
        product.destroy()

app.close()
