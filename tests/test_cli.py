"""The cosmos-bridge command as a user meets it: reports, written files, one-line errors."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from tests.conftest import YCB


def test_inspect_reports_render_products_and_classes(run_cli):
    result = run_cli("inspect", YCB)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for camera, frames in (("Replicator_03", 1), ("Replicator_04", 4), ("Replicator_05", 1)):
        line = next(line for line in out.splitlines() if camera in line)
        assert f" {frames} " in line and "512x512" in line
    for modality in ("rgb", "depth", "semantic", "instance", "camera"):
        assert modality in out
    for ycb_class in ("soup_can", "meat_can", "marker", "banana"):
        assert ycb_class in out


def test_inspect_json(run_cli):
    import json

    result = run_cli("inspect", YCB, "--json")
    report = json.loads(result.stdout)
    assert [c["name"] for c in report["cameras"]] == [
        "Replicator_03",
        "Replicator_04",
        "Replicator_05",
    ]
    assert abs(sum(report["class_shares"].values()) - 1) < 1e-6


def test_controls_writes_every_control_for_every_frame(run_cli, tmp_path):
    out = tmp_path / "controls"
    result = run_cli("controls", YCB, "--out", out)
    assert result.exit_code == 0, result.stderr
    expected = {"Replicator_03": [0], "Replicator_04": [0, 1, 2, 3], "Replicator_05": [0]}
    for camera, frames in expected.items():
        clip = out / camera / "clip_0000"
        assert (clip / "contact_sheet.png").is_file()
        for control in ("edge", "depth", "seg", "blur"):
            assert (clip / f"{control}.mp4").is_file()
            for i in frames:
                picture = cv2.imread(str(clip / control / f"{control}_{i:04d}.png"))
                assert picture.shape == (512, 512, 3), (camera, control, i)
                assert (clip / "weights" / f"{control}_{i:04d}.png").is_file()
    # Where Replicator wrote inf (no hit), the depth control holds the far value.
    raw = np.load(YCB / "Replicator_05/distance_to_image_plane/distance_to_image_plane_0000.npy")
    depth = cv2.imread(str(out / "Replicator_05/clip_0000/depth/depth_0000.png"))
    assert np.isinf(raw).any() and (depth[np.isinf(raw)] == 0).all()
    assert depth[np.isfinite(raw)].max() == 255
    # A class keeps one colour over all frames of the clip.
    colours = set()
    for i in range(4):
        seg = cv2.imread(str(out / f"Replicator_04/clip_0000/seg/seg_{i:04d}.png"))
        ids = cv2.imread(
            str(YCB / f"Replicator_04/semantic_segmentation/semantic_segmentation_{i:04d}.png"),
            cv2.IMREAD_UNCHANGED,
        )
        banana = (ids[..., 2] == 255) & (ids[..., 1] == 197) & (ids[..., 0] == 25)  # BGRA
        if banana.any():
            colours |= {tuple(c) for c in seg[banana]}
    assert len(colours) == 1


def test_bad_input_gives_one_line_and_writes_nothing(run_cli, tmp_path):
    data = tmp_path / "ycb"
    shutil.copytree(YCB, data)
    bad = data / "Replicator_04/semantic_segmentation/semantic_segmentation_0003.png"
    bad.write_bytes(b"\x89PNG broken")
    out = tmp_path / "controls"
    result = run_cli("controls", data, "--out", out)
    assert result.exit_code == 2
    assert "semantic_segmentation_0003.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [data]


def test_all_invalid_depth_is_refused(run_cli, tmp_path):
    data = tmp_path / "ycb"
    shutil.copytree(YCB / "Replicator_03", data / "Replicator_03")
    depth = data / "Replicator_03/distance_to_image_plane/distance_to_image_plane_0000.npy"
    np.save(depth, np.full((512, 512), np.inf, np.float32))
    result = run_cli("controls", data, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "no valid pixel" in result.stderr and "distance_to_image_plane_0000.npy" in result.stderr
    assert not (tmp_path / "out").exists()


def test_controls_refuses_a_non_empty_output(run_cli, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    result = run_cli("controls", YCB, "--out", tmp_path / "out", "--camera", "Replicator_03")
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_missing_dataset(run_cli, tmp_path):
    result = run_cli("inspect", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such file" in result.stderr


def _hashes(root):
    import hashlib

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_controls_never_writes_over_or_deletes_its_input(run_cli, tmp_path):
    data = shutil.copytree(YCB, tmp_path / "data" / "ycb")
    before = _hashes(tmp_path / "data")
    for out in (data, data / "Replicator_03", data / "controls", tmp_path / "data", tmp_path):
        result = run_cli("controls", data, "--out", out, "--overwrite", "--camera", "Replicator_03")
        assert result.exit_code == 2, (out, result.stderr)
        assert "overlaps the input" in result.stderr and "Traceback" not in result.stderr
        assert _hashes(tmp_path / "data") == before
    assert not (data / "controls").exists()


def test_controls_overwrite_replaces_only_what_it_wrote(run_cli, tmp_path):
    out = tmp_path / "out"
    args = ("controls", YCB, "--camera", "Replicator_03", "--out", out)
    assert run_cli(*args).exit_code == 0
    (out / "stale.txt").write_text("from the first export")
    assert run_cli(*args, "--overwrite").exit_code == 0
    assert not (out / "stale.txt").exists() and any(out.rglob("*.png"))

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    result = run_cli("controls", YCB, "--camera", "Replicator_03", "--out", mine, "--overwrite")
    assert result.exit_code == 2 and "deletes only folders cosmos-bridge wrote" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
