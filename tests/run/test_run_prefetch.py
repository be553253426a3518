"""With a model that leaves the CPU free (on a GPU), the loop reads the next clip and
builds its controls while the model generates: same files, and errors where they were."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from run_helpers import CappedModel, starter

from bridge_core.errors import DatasetError
from bridge_core.parallel import single_threaded_opencv
from bridge_core.run import loop
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job
from bridge_core.run.protocol import ModelRequirements
from bridge_core.spec.models import JobSpec


class GpuLikeModel(CappedModel):
    """The tiny model, saying it leaves the CPU free, and taking a little while per clip
    (as a GPU's forward passes do); it records when each clip's generation ran."""

    def __init__(self, model):
        super().__init__(model)
        self.spans: list[tuple[str, float, float]] = []

    @property
    def requirements(self) -> ModelRequirements:
        return replace(super().requirements, leaves_cpu_free=True)

    def generate(self, controls, prompt, negative_prompt, seed, settings):
        began = time.perf_counter()
        time.sleep(0.3)  # the GPU at work; this thread waits, the CPU is free
        frames = super().generate(controls, prompt, negative_prompt, seed, settings)
        self.spans.append((prompt, began, time.perf_counter()))
        return frames


def _outputs(run_dir: Path) -> dict[str, str]:
    lines = (run_dir / "manifest.jsonl").read_text().splitlines()
    return {e["output"]: e["sha256"] for e in map(json.loads, lines)}


def _named(spec: JobSpec, run_name: str) -> JobSpec:
    return spec.model_copy(update={"output": spec.output.model_copy(update={"run_name": run_name})})


def test_next_clip_is_read_while_the_model_generates_and_files_are_the_same(
    ycb, tiny_resolved, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = starter(ycb)
    spec = spec.model_copy(update={"variations": spec.variations[:1]})
    capped = replace(tiny_resolved, model=CappedModel(tiny_resolved.model))
    plain = run_job(_named(spec, "plain"), capped)

    built: list[tuple[str, float, float, str]] = []
    controls = loop.clip_controls

    def recorded(clip, spec, result):
        began = time.perf_counter()
        stack = controls(clip, spec, result)
        built.append((clip.camera, began, time.perf_counter(), threading.current_thread().name))
        return stack

    monkeypatch.setattr(loop, "clip_controls", recorded)
    model = GpuLikeModel(tiny_resolved.model)
    prefetched = run_job(_named(spec, "prefetched"), replace(tiny_resolved, model=model))

    assert prefetched.generated == plain.generated == 6
    assert _outputs(prefetched.run_dir) == _outputs(plain.run_dir)
    # Three clips (one per camera): the first built before the run starts, the next two
    # on the loop's helper thread, each while the clip before it was being generated.
    assert [camera for camera, *_ in built] == ["Replicator_03", "Replicator_04", "Replicator_05"]
    assert [name.startswith("next-clip") for *_, name in built] == [False, True, True]
    generation_ends = [end for _, _, end in model.spans]
    for (_, began, _, _), previous_end in zip(built[1:], generation_ends, strict=False):
        assert began < previous_end


def test_a_bad_next_clip_fails_where_it_did_with_the_clips_before_it_whole(
    ycb, tiny_resolved
) -> None:
    """The second camera's depth is whole but not depth (integers), which only decoding
    finds: its controls, built ahead on the helper thread, fail when the loop reaches that
    clip; the first clip's frames stay done. (A truncated file is refused before work.)"""
    depth = ycb / "Replicator_04" / "distance_to_image_plane" / "distance_to_image_plane_0002.npy"
    np.save(depth, np.ones(np.load(depth).shape, np.int32))
    spec = starter(ycb)
    spec = spec.model_copy(update={"variations": spec.variations[:1]})
    model = GpuLikeModel(tiny_resolved.model)
    with pytest.raises(DatasetError, match="distance_to_image_plane_0002"):
        run_job(spec, replace(tiny_resolved, model=model))

    run_dir = ycb / RUNS_FOLDER / "first_run"
    assert sorted(_outputs(run_dir)) == ["sunny/Replicator_03/rgb/rgb_0000.png"]
    assert len(model.spans) == 1
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert not [p for p in run_dir.rglob(".*")]


def test_opencv_threads_come_back_when_two_loops_overlap() -> None:
    """Loops on two threads (the current clip and the next one) each ask for one OpenCV
    thread; the setting returns to what it was only when both are done."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        first, second = single_threaded_opencv(), single_threaded_opencv()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert cv2.getNumThreads() == 1, "the second loop is still running"
        second.__exit__(None, None, None)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
