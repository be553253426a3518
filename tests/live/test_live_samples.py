"""samples/isaacsim scripts against the omni stand-in (Isaac Sim itself cannot run here)."""

from __future__ import annotations

import runpy
import sys

from live_data import REPO

from bridge_core.run.layout import RUNS_FOLDER

BATCH = REPO / "samples" / "isaacsim" / "batch_headless.py"
SPEC = """\
input: {dataset: .}
controls: {edge: {weight: 0.5}}
variations: [{name: dusk, prompt: the same warehouse at dusk, seed: 1}]
"""


def test_batch_headless_moves_animated_scenes(kit, monkeypatch, recording, flat_frames, tmp_path):
    import cosmos.transfer.bridge.writer as writer_module
    import omni.timeline

    # What enabling the extension does in Isaac Sim, with the recording model loaded.
    monkeypatch.setattr(writer_module, "resolve_model", lambda _spec: recording[1])
    kit.rep.WriterRegistry.register(writer_module.CosmosTransferWriter)
    timeline = omni.timeline.get_timeline_interface()
    times: list[float] = []

    def frame() -> dict:
        times.append(timeline.get_current_time())  # the scene time this frame shows
        return flat_frames[len(times) - 1]

    kit.rep.orchestrator.frame_source = frame
    (tmp_path / "spec.yaml").write_text(SPEC)
    argv = [str(BATCH), str(tmp_path / "warehouse.usd"), "--cameras", "/World/Cam"]
    argv += ["--frames", "4", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(BATCH), run_name="__main__")
    assert len(times) == 4 and times == sorted(set(times))  # each frame a later moment
    out = tmp_path / "warehouse"
    assert len(list((out / RUNS_FOLDER / "run" / "dusk").glob("rgb_*.png"))) == 4
