"""CosmosTransferWriter against the omni stand-in: threads, flushing, and bad configuration."""

from __future__ import annotations

import threading

import pytest
from live_data import FRAMES

from bridge_core.live.models import ModelCache
from bridge_core.run.layout import RUNS_FOLDER

VARIATIONS = [{"name": "dusk", "prompt": "the same warehouse at dusk", "seed": 1}]


def _writer(kit, recording, **params):
    from cosmos.transfer.bridge.writer import CosmosTransferWriter

    kit.rep.WriterRegistry.register(CosmosTransferWriter)
    writer = kit.rep.WriterRegistry.get("CosmosTransferWriter")
    params.setdefault("controls", {"edge": {}})
    params.setdefault("variations", VARIATIONS)
    writer.initialize(models=ModelCache(lambda _spec: recording[1]), **params)
    return writer


def _captured(kit, recording, flat_frames, tmp_path):
    """The writer, attached, after Replicator stepped through every sample frame (clips
    of 3 into tmp_path/cap)."""
    writer = _writer(kit, recording, output_dir=tmp_path / "cap", clip_length=3)
    writer.attach(["/Render/RenderProduct_Replicator"])
    kit.rep.orchestrator.frame_source = iter(flat_frames).__next__
    for _ in range(FRAMES):
        kit.rep.orchestrator.step()
    return writer


def test_generation_runs_off_the_write_thread_and_flush_waits(
    kit, recording, flat_frames, tmp_path
):
    model = recording[0]
    writer = _captured(kit, recording, flat_frames, tmp_path)
    writer.flush()
    # Every clip (3 + 3 + the partial 2) was generated before flush returned,
    # none of them on the thread that called write().
    assert [frames for _thread, frames in model.calls] == [3, 3, 2]
    assert threading.get_ident() not in {thread for thread, _frames in model.calls}
    run = tmp_path / "cap" / RUNS_FOLDER / "run"
    assert sorted(p.name for p in (run / "dusk").glob("rgb_*.png")) == [
        f"rgb_{i:04d}.png" for i in range(FRAMES)
    ]
    # One render product: BasicWriter's flat layout, the fast annotator under its short name.
    assert (tmp_path / "cap" / "instance_id_segmentation_mapping_0007.json").is_file()
    assert (tmp_path / "cap" / "metadata.txt").is_file()
    assert writer.status.frames_generated == FRAMES and writer.error is None
    writer.detach()  # flushing again is a no-op
    assert len(model.calls) == 3


def test_replicator_stopping_does_not_wait_for_generation(kit, recording, flat_frames, tmp_path):
    model = recording[0]
    writer = _captured(kit, recording, flat_frames, tmp_path)
    model.release.clear()  # generation cannot end until the test lets it
    # Stopping calls on_final_frame on Kit's main loop (here, this thread).
    stopper = threading.Thread(target=kit.rep.orchestrator.wait_until_complete)
    stopper.start()
    stopper.join(timeout=5)
    returned = not stopper.is_alive()
    model.release.set()
    stopper.join()
    assert returned, "wait_until_complete blocked until generation ended"
    result = writer.flush()  # what a script does next: wait, off the main loop or at the end
    assert result.frames_generated == FRAMES and writer.status.finished
    assert [frames for _thread, frames in model.calls] == [3, 3, 2]
    writer.write(flat_frames[0])  # Replicator stepped again: not part of this capture
    assert writer.error is None and writer.status.frames_captured == FRAMES


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"controls": {"lidar_depth": {}}}, "unknown control"),
        ({"variations": [{"name": "../up", "prompt": "x"}]}, "escape the output folder"),
        ({"clip_length": 0}, "clip_length"),
    ],
)
def test_bad_spec_is_logged_and_the_capture_goes_on(
    kit, recording, flat_frames, tmp_path, params, expected
):
    writer = _writer(kit, recording, output_dir=tmp_path / "cap", **params)
    assert expected in writer.error
    assert any(level == "error" and expected in msg for level, msg in kit.carb.messages)
    writer.write(flat_frames[0])  # no exception: the writer is off
    assert writer.flush() is None
    assert not (tmp_path / "cap").exists()


def test_unwritable_output_folder_is_reported(kit, recording, flat_frames, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = _writer(kit, recording, output_dir=blocker / "cap")
    assert "cannot write to the output folder" in writer.error
    writer.write(flat_frames[0])


def test_model_that_cannot_load_keeps_the_ground_truth(kit, flat_frames, tmp_path):
    from cosmos.transfer.bridge.writer import CosmosTransferWriter

    kit.rep.WriterRegistry.register(CosmosTransferWriter)
    writer = kit.rep.WriterRegistry.get("CosmosTransferWriter")
    missing = tmp_path / "no" / "such" / "model"
    writer.initialize(
        output_dir=tmp_path / "cap",
        controls={"edge": {}},
        variations=VARIATIONS,
        model={"id": str(missing), "device": "cpu"},
    )
    for data in flat_frames[:2]:
        writer.write(data)
    result = writer.flush()
    assert "cannot load model" in result.error and str(missing) in result.error
    assert writer.error == result.error
    assert any(level == "error" and "cannot load model" in msg for level, msg in kit.carb.messages)
    assert (tmp_path / "cap" / "rgb_0001.png").is_file()
    assert not (tmp_path / "cap" / RUNS_FOLDER).exists()
