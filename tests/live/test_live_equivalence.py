"""Two clips of Replicator data dicts through the live class give what the run loop gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from live_data import FRAMES, RENDER_PRODUCTS, SAMPLE

from bridge_core.datasets.detect import open_dataset
from bridge_core.live.augmenter import LiveAugmenter
from bridge_core.live.spec import live_spec
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job
from bridge_core.run.models import resolve_model

# 8 frames in clips of 5: a full clip from write(), the partial one from finish().
CLIP_LENGTH = 5


def _tree(root: Path) -> dict[str, tuple[str, bytes]]:
    """relative path -> ("link", target) or ("file", bytes), links not followed."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path).encode())
            else:
                out[rel] = ("file", path.read_bytes())
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, multi_frames):
    """The live capture's run folder and the run loop's over the same ground truth."""
    torch.set_num_threads(2)
    folder = tmp_path_factory.mktemp("live") / "capture"
    spec = live_spec(
        folder,
        controls={"edge": {"weight": 0.6}, "depth": {"weight": 0.4}},
        variations=[{"name": "fog", "prompt": "the same warehouse in dense fog", "seed": 3}],
        model={"id": "tiny", "num_steps": 1, "device": "cpu"},
        clip_length=CLIP_LENGTH,
    )
    model = resolve_model(spec.model)
    with LiveAugmenter(spec, model) as live:
        for data in multi_frames:
            live.write(data)
        result = live.finish()
    assert result.error is None and not result.cancelled
    assert result.frames_generated == FRAMES * len(RENDER_PRODUCTS)
    # Same depth in the folder tree, so the relative label links still resolve.
    moved = folder / "live_transfer"
    (folder / RUNS_FOLDER).rename(moved)
    reference = run_job(spec, model)
    return folder, moved / spec.output.run_name, reference.run_dir


def test_live_outputs_equal_run_loop_outputs(runs):
    _folder, live_dir, reference_dir = runs
    live, reference = _tree(live_dir), _tree(reference_dir)
    assert sorted(live) == sorted(reference)
    assert any(rel.startswith("fog/Replicator_01/rgb/rgb_0007") for rel in live)
    for rel in reference:
        if rel == "run.json":
            continue
        assert live[rel] == reference[rel], rel
    # run.json differs only in its timing (and the live closing pass generates nothing).
    live_run, reference_run = (json.loads(t[1]) for t in (live["run.json"], reference["run.json"]))
    assert live_run.pop("timing")["frames_total"] == reference_run.pop("timing")["frames_total"]
    assert live_run == reference_run
    assert live_run["clip_length"] == CLIP_LENGTH
    assert [c["frames"] for c in live_run["metrics"]["clips"]] == [[0, 4], [5, 7]] * 2


def test_ground_truth_reads_back_as_the_sample(runs):
    folder, _live, _reference = runs
    written, sample = open_dataset(folder), open_dataset(SAMPLE)
    assert written.layout == "basicwriter"
    assert sorted(written.cameras) == sorted(sample.cameras)
    for name, camera in written.cameras.items():
        assert [f.index for f in camera.frames] == list(range(FRAMES))
        for ours, theirs in zip(camera.frames, sample.cameras[name].frames, strict=True):
            assert np.array_equal(ours.rgb, theirs.rgb)
            assert np.array_equal(ours.depth, theirs.depth)
            assert np.array_equal(ours.normals, theirs.normals)
            assert np.array_equal(ours.semantic.ids, theirs.semantic.ids)
            assert ours.semantic.labels == theirs.semantic.labels
            assert ours.instance.labels == theirs.instance.labels
    # Arrays and json are written byte for byte as BasicWriter writes them.
    for rel in (
        "Replicator/camera_params/camera_params_0003.json",
        "Replicator_01/distance_to_image_plane/distance_to_image_plane_0006.npy",
        "Replicator/semantic_segmentation/semantic_segmentation_labels_0000.json",
    ):
        assert (folder / rel).read_bytes() == (SAMPLE / rel).read_bytes(), rel
    assert (folder / "Replicator_01/instance_id_segmentation").is_dir()
