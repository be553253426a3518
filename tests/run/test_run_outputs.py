"""init then run on copies of real datasets: every frame and variation written beside its
labels, readable as a BasicWriter dataset, recorded in the manifest, inputs untouched."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
from run_helpers import file_hashes, starter

from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB, SEMANTIC
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job

YCB_FRAMES = {"Replicator_03": [0], "Replicator_04": [0, 1, 2, 3], "Replicator_05": [0]}
VARIATIONS = ("sunny", "overcast_dusk")


def _manifest(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "manifest.jsonl").read_text().splitlines()]


def test_ycb_every_frame_and_variation_beside_its_labels(ycb, small_model) -> None:
    before = file_hashes(ycb)
    spec = starter(ycb)
    result = run_job(spec, small_model)

    run_dir = ycb / RUNS_FOLDER / "first_run"
    assert result.run_dir == run_dir
    assert (result.total, result.generated, result.skipped) == (12, 12, 0)
    source = open_dataset(ycb)
    for variation in VARIATIONS:
        out = open_dataset(run_dir / variation)
        assert out.layout == "basicwriter"
        assert {n: [f.index for f in c.frames] for n, c in out.cameras.items()} == YCB_FRAMES
        for name, camera in out.cameras.items():
            for frame, original in zip(camera.frames, source.camera(name).frames, strict=True):
                # The same annotators and modalities as the input frame, labels attached.
                assert frame.modalities == original.modalities
                assert frame.label_files.keys() == original.label_files.keys()
                assert frame.rgb.shape == (512, 512, 3)
                assert np.array_equal(frame.semantic.ids, original.semantic.ids)
                assert frame.semantic.labels == original.semantic.labels
                assert np.array_equal(frame.depth, original.depth)
                for annotator, paths in frame.label_files.items():
                    for path, input_path in zip(
                        paths, original.label_files[annotator], strict=True
                    ):
                        assert path.is_symlink() and not os.path.isabs(os.readlink(path))
                        assert path.resolve() == input_path.resolve()

    entries = _manifest(run_dir)
    assert len(entries) == 12 and len({e["output"] for e in entries}) == 12
    assert {(e["variation"], e["camera"], e["frame"]) for e in entries} == {
        (v, c, i) for v in VARIATIONS for c, frames in YCB_FRAMES.items() for i in frames
    }
    for entry in entries:
        data = (run_dir / entry["output"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert (ycb / entry["source"]).is_file()
        assert entry["prompt"] == next(
            v.prompt for v in spec.variations if v.name == entry["variation"]
        )
    # One seed per clip and variation, the same for every frame of a clip.
    seeds = {(e["variation"], e["camera"]): e["seed"] for e in entries}
    assert len(set(seeds.values())) == 6

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete"
    assert record["model"]["id"] == "tiny" and record["model"]["random_weights"]
    assert set(record["model"]["weights_sha256"]) >= {"transformer", "vae", "controlnet/edge"}
    assert record["packages"]["numpy"] and record["label_files"] == "symlink"
    assert record["timing"]["frames_generated"] == 12
    clips = record["metrics"]["clips"]
    assert [(c["camera"], c["frames"]) for c in clips] == [
        ("Replicator_03", [0, 0]),
        ("Replicator_04", [0, 3]),
        ("Replicator_05", [0, 0]),
    ]
    for clip in clips:
        assert clip["model_size"] == [64, 64]  # resized down for the model, and back
        for values in clip["variations"].values():
            assert 0 <= values["edge_f1"] <= 1 and -1 <= values["blur_ssim"] <= 1
        folder = (
            run_dir / "report" / clip["camera"] / "frames_{:04d}-{:04d}".format(*clip["frames"])
        )
        assert cv2.imread(str(folder / "contact_sheet.png")) is not None
        assert all((folder / f"{v}.mp4").stat().st_size > 0 for v in VARIATIONS)
    assert set(record["metrics"]["mean"]) == set(VARIATIONS)

    # Inputs byte-identical, nothing added outside the outputs folder, no temporaries.
    assert file_hashes(ycb) == before
    assert not [p for p in run_dir.rglob(".*") if p.name != ".lock"]
    assert not (run_dir / ".lock").exists()


def test_rerun_skips_done_frames_and_force_redoes_them(ycb, small_model) -> None:
    spec = starter(ycb)
    run_job(spec, small_model)
    run_dir = ycb / RUNS_FOLDER / "first_run"

    def outputs() -> dict[str, tuple[str, int]]:
        # (content, inode) of every output file but run.json, whose timing changes.
        return {
            rel: (digest, (run_dir / rel).stat().st_ino)
            for rel, digest in file_hashes(run_dir, skip_runs=False).items()
            if rel != "run.json"
        }

    first = outputs()
    calls = small_model.model.calls
    again = run_job(spec, small_model)
    assert (again.generated, again.skipped) == (0, 12)
    assert small_model.model.calls == calls  # the model was not even asked
    assert outputs() == first

    forced = run_job(spec, small_model, force=True)
    assert (forced.generated, forced.skipped) == (12, 0)
    redone = outputs()
    # Deterministic seeds: the same bytes, in new files.
    assert {rel: d for rel, (d, _) in redone.items()} == {rel: d for rel, (d, _) in first.items()}
    rgb = [rel for rel in first if rel.endswith(".png") and "/rgb/" in rel]
    assert len(rgb) == 12 and all(redone[rel][1] != first[rel][1] for rel in rgb)


def test_a_changed_prompt_redoes_only_its_variation(ycb, small_model) -> None:
    spec = starter(ycb)
    run_job(spec, small_model)
    spec.variations[1].prompt = "The same scene under heavy snowfall."
    result = run_job(spec, small_model, frames=(0, 1))
    # Frame 0 of each camera: the changed variation is redone, and so is Replicator_04's
    # other variation, whose clip is now frame 0 alone (controls are normalised per clip,
    # so the clip is part of what decides the pixels).
    assert (result.total, result.generated, result.skipped) == (6, 4, 2)
    entries = _manifest(result.run_dir)
    assert len(entries) == 12
    assert {
        e["prompt"] for e in entries if e["variation"] == "overcast_dusk" and e["frame"] == 0
    } == {"The same scene under heavy snowfall."}


def test_cosmos_transfer1_control_videos(transfer1, small_model) -> None:
    before = file_hashes(transfer1)
    spec = starter(transfer1, input={"frames": "0:9"})
    assert list(spec.controls) == ["edge", "depth", "seg", "blur"]
    result = run_job(spec, small_model)
    assert (result.total, result.generated) == (18, 18)
    for variation in VARIATIONS:
        out = open_dataset(result.run_dir / variation)
        camera = out.camera("example1")
        assert [f.index for f in camera.frames] == list(range(9))
        assert camera.frames[0].modalities == {RGB} and camera.resolution == (640, 480)
    # Clips of the model's 5 frames: 0-4 and 5-8.
    assert [c["frames"] for c in result.metrics["clips"]] == [[0, 4], [5, 8]]
    assert len(_manifest(result.run_dir)) == 18
    assert file_hashes(transfer1) == before
    assert SEMANTIC not in camera.frames[0].modalities
