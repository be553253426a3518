"""Hostile and broken user input to ``cosmos-bridge``, and what the user must see for each:
exit code 2, one error line on stderr naming the offending file, no traceback, the inputs
byte-identical afterwards and nothing written, not even an empty output or run folder.

Every case works on copies (``warehouse``, ``ycb``) inside the test's folder; ``refuses``
(conftest.py) hashes that whole folder before and after the command.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_helpers import TRANSFER1_ASSETS, WAREHOUSE, WAREHOUSE_SCENE, write_yaml

CAMERA = "Replicator"
RUNS = "cosmos_transfer"


def _controls(dataset: Path, out: Path, frames: str = "0:3") -> tuple[object, ...]:
    return ("controls", dataset, "--out", out, "--camera", CAMERA, "--frames", frames)


def _file(dataset: Path, annotator: str, index: int, ext: str, stem: str | None = None) -> Path:
    return dataset / CAMERA / annotator / f"{stem or annotator}_{index:04d}.{ext}"


def _labels(dataset: Path, index: int = 0) -> Path:
    return _file(dataset, "semantic_segmentation", index, "json", "semantic_segmentation_labels")


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGBA, with a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    import io

    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _no_file_depth(dataset: Path) -> None:
    """Drop distance_to_image_plane so depth comes from distance_to_camera + camera_params
    (the camera_params json is then read)."""
    for camera in (CAMERA, "Replicator_01"):
        shutil.rmtree(dataset / camera / "distance_to_image_plane")


# ---------------------------------------------------------------------------
# Dataset files: depth, labels, pictures, camera parameters.


def test_depth_of_another_size_than_the_rgb(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 1, "npy")
    np.save(depth, np.full((27, 48), 5.0, np.float32))  # the rgb is 96x54
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_semantic_labels_json_is_a_list(refuses, warehouse, tmp_path):
    labels = _labels(warehouse)
    entries = json.loads(labels.read_text())
    labels.write_text(json.dumps([{k: v} for k, v in entries.items()]))
    out = tmp_path / "out"
    refuses(labels, *_controls(warehouse, out), absent=(out,))


def test_semantic_label_values_are_numbers(refuses, warehouse, tmp_path):
    labels = _labels(warehouse)
    entries = json.loads(labels.read_text())
    labels.write_text(json.dumps({k: i for i, k in enumerate(entries)}))
    out = tmp_path / "out"
    refuses(labels, *_controls(warehouse, out), absent=(out,))


def test_semantic_label_values_are_strings(cli, warehouse, tmp_path):
    """Replicator writes {"(R, G, B, A)": {"class": "floor"}}; a bare string (as instance
    mappings hold) is read as the class, not refused."""
    from bridge_core.datasets.detect import open_dataset

    labels = _labels(warehouse)
    entries = json.loads(labels.read_text())
    labels.write_text(json.dumps({k: v["class"] for k, v in entries.items()}))
    frame = open_dataset(warehouse).camera(CAMERA).frames[0]
    assert sorted(frame.semantic.labels.values()) == sorted(v["class"] for v in entries.values())
    out = tmp_path / "out"
    result = cli(*_controls(warehouse, out, "0:1"))
    assert result.exit_code == 0, result.stderr
    assert any(out.rglob("*.mp4")), "no control video written"


def test_semantic_label_key_is_not_a_colour(refuses, warehouse, tmp_path):
    labels = _labels(warehouse)
    entries = json.loads(labels.read_text())
    labels.write_text(json.dumps({f"class {i}": v for i, v in enumerate(entries.values())}))
    out = tmp_path / "out"
    refuses(labels, *_controls(warehouse, out), absent=(out,))


def test_semantic_labels_json_is_a_folder(refuses, warehouse, tmp_path):
    labels = _labels(warehouse)
    labels.unlink()
    labels.mkdir()
    out = tmp_path / "out"
    refuses(labels, *_controls(warehouse, out), absent=(out,))


def test_semantic_labels_json_links_to_dev_zero(refuses, warehouse, tmp_path):
    labels = _labels(warehouse)
    labels.unlink()
    labels.symlink_to("/dev/zero")
    out = tmp_path / "out"
    refuses(labels, *_controls(warehouse, out), absent=(out,))


def test_depth_npy_header_claims_a_huge_shape(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 0, "npy")
    depth.write_bytes(_npy_header((100000, 100000, 4)) + b"\x00" * 64)  # claims 160 GB
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_depth_npy_header_claims_a_huge_2d_shape(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 0, "npy")
    depth.write_bytes(_npy_header((100000, 100000)) + b"\x00" * 64)  # claims 40 GB
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_depth_npy_is_truncated(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 1, "npy")
    depth.write_bytes(depth.read_bytes()[:1000])
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_depth_npy_is_a_pickled_object_array(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 0, "npy")
    np.save(depth, np.array([{"depth": 1.0}], dtype=object), allow_pickle=True)
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_depth_npy_holds_strings(refuses, warehouse, tmp_path):
    depth = _file(warehouse, "distance_to_image_plane", 0, "npy")
    np.save(depth, np.full((54, 96), "far", dtype="<U3"))
    out = tmp_path / "out"
    refuses(depth, *_controls(warehouse, out), absent=(out,))


def test_rgb_png_is_truncated(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 1, "png")
    rgb.write_bytes(rgb.read_bytes()[: rgb.stat().st_size // 2])
    out = tmp_path / "out"
    refuses(rgb, *_controls(warehouse, out), absent=(out,))


def test_rgb_png_is_a_renamed_jpeg(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 1, "png")
    picture = cv2.imread(str(rgb), cv2.IMREAD_COLOR)
    ok, jpeg = cv2.imencode(".jpg", picture)
    assert ok
    rgb.write_bytes(jpeg.tobytes())
    out = tmp_path / "out"
    refuses(rgb, *_controls(warehouse, out), absent=(out,))


def test_rgb_png_is_empty(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 2, "png")
    rgb.write_bytes(b"")
    out = tmp_path / "out"
    refuses(rgb, *_controls(warehouse, out), absent=(out,))


def test_rgb_png_links_to_dev_zero(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 0, "png")
    rgb.unlink()
    rgb.symlink_to("/dev/zero")
    out = tmp_path / "out"
    refuses(rgb, *_controls(warehouse, out), absent=(out,))


def test_rgb_png_cannot_be_read(refuses, warehouse, tmp_path):
    """chmod 000; root reads such a file anyway, so there a folder stands where the picture
    should be (equally unreadable as a picture)."""
    rgb = _file(warehouse, "rgb", 1, "png")
    if os.geteuid() == 0:
        rgb.unlink()
        rgb.mkdir()
    else:
        rgb.chmod(0)
    out = tmp_path / "out"
    try:
        refuses(rgb, *_controls(warehouse, out), absent=(out,))
    finally:
        if rgb.is_file():
            rgb.chmod(0o644)


def test_segmentation_png_header_claims_a_huge_picture(refuses, warehouse, tmp_path):
    seg = _file(warehouse, "semantic_segmentation", 0, "png")
    seg.write_bytes(_png_claiming(40000, 40000))  # 6.4 GB of RGBA once decoded
    out = tmp_path / "out"
    refuses(seg, *_controls(warehouse, out), absent=(out,))


def test_segmentation_of_another_size_than_the_rgb_in_ycb(refuses, ycb, tmp_path):
    seg = ycb / "Replicator_04/semantic_segmentation/semantic_segmentation_0001.png"
    picture = cv2.imread(str(seg), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(seg), cv2.resize(picture, (256, 256), interpolation=cv2.INTER_NEAREST))
    out = tmp_path / "out"
    args = ("controls", ycb, "--out", out, "--camera", "Replicator_04", "--frames", "0:2")
    refuses(seg, *args, absent=(out,))


def test_frames_of_different_sizes_within_a_camera(refuses, tmp_path):
    """rgb only, so the one odd picture is the only thing that differs."""
    dataset = tmp_path / "rgbonly"
    (dataset / CAMERA / "rgb").mkdir(parents=True)
    for i in range(4):
        shutil.copy(_file(WAREHOUSE, "rgb", i, "png"), _file(dataset, "rgb", i, "png"))
    odd = _file(dataset, "rgb", 2, "png")
    cv2.imwrite(str(odd), cv2.resize(cv2.imread(str(odd), cv2.IMREAD_UNCHANGED), (48, 27)))
    out = tmp_path / "out"
    refuses(odd, *_controls(dataset, out, "0:4"), absent=(out,))


def test_rgb_missing_in_the_middle_of_the_frame_range(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 2, "png")
    rgb.unlink()
    out = tmp_path / "out"
    refuses(rgb, *_controls(warehouse, out, "0:4"), absent=(out,))


def _wrong_types(data: dict) -> str:
    data.update(cameraFocalLength="18mm", renderProductResolution="96x54", cameraAperture=20.9)
    return json.dumps(data)


# Each edit turns the parsed camera_params json into the text written in its place.
CAMERA_PARAMS_EDITS = {
    "not-json": lambda data: '{"cameraFocalLength": 18.0, "renderProductResolution": [96, ',
    "wrong-types": _wrong_types,
    "a-list": lambda data: json.dumps([data]),
    # json writes NaN, and Python's json reads it.
    "focal-length-nan": lambda data: json.dumps({**data, "cameraFocalLength": float("nan")}),
}


@pytest.mark.parametrize("frame", [0, 1])
@pytest.mark.parametrize("case", sorted(CAMERA_PARAMS_EDITS))
def test_camera_params_json_is_broken(refuses, warehouse, tmp_path, case, frame):
    _no_file_depth(warehouse)
    params = _file(warehouse, "camera_params", frame, "json")
    params.write_text(CAMERA_PARAMS_EDITS[case](json.loads(params.read_text())))
    out = tmp_path / "out"
    refuses(params, *_controls(warehouse, out), absent=(out,))


def test_metadata_txt_is_not_json(refuses, warehouse):
    metadata = warehouse / "metadata.txt"
    metadata.write_bytes(b"\xff\xfe BasicWriter \x00")
    refuses(metadata, "inspect", warehouse)


# ---------------------------------------------------------------------------
# The dataset path itself.


@pytest.mark.parametrize("command", ["inspect", "controls", "init"])
def test_dataset_is_dev_null(refuses, tmp_path, command):
    out = tmp_path / "out"
    extra = {"inspect": (), "controls": ("--out", out), "init": ("-o", tmp_path / "job.yaml")}
    refuses("/dev/null", command, "/dev/null", *extra[command], absent=(out, tmp_path / "job.yaml"))


@pytest.mark.parametrize("command", ["inspect", "controls"])
def test_dataset_is_a_text_file(refuses, tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("rgb_0000.png\nthese are my notes, not a dataset\n")
    out = tmp_path / "out"
    extra = ("--out", out) if command == "controls" else ()
    refuses(notes, command, notes, *extra, absent=(out,))


@pytest.mark.parametrize("cut", [0, 4096])
def test_control_video_is_empty_or_truncated(refuses, tmp_path, cut):
    video = tmp_path / "example1_depth.mp4"
    video.write_bytes((TRANSFER1_ASSETS / "example1_depth.mp4").read_bytes()[:cut])
    out = tmp_path / "out"
    refuses(video, "controls", video, "--out", out, "--frames", "0:2", absent=(out,))


# ---------------------------------------------------------------------------
# Output folders: controls --out and capture --out.


def test_controls_out_is_the_dataset(refuses, warehouse):
    refuses(warehouse, *_controls(warehouse, warehouse))


def test_controls_out_is_inside_the_dataset(refuses, warehouse):
    out = warehouse / "controls"
    refuses(out, *_controls(warehouse, out), absent=(out,))


def test_controls_out_is_a_link_to_the_dataset(refuses, warehouse, tmp_path):
    out = tmp_path / "out"
    out.symlink_to(warehouse)
    refuses(out, *_controls(warehouse, out), "--overwrite")


def test_controls_out_is_a_file(refuses, warehouse, tmp_path):
    out = tmp_path / "report.pdf"
    out.write_bytes(b"%PDF-1.4 the user's own file")
    refuses(out, *_controls(warehouse, out), "--overwrite")


def test_capture_out_holds_the_scene(refuses, tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    scene = Path(shutil.copy(WAREHOUSE_SCENE, folder / "warehouse.usda"))
    args = ("capture", scene, "--camera", "/World/Cameras/Aisle", "--frames", "0:1")
    refuses(folder, *args, "--resolution", "32x18", "--out", folder)


@pytest.mark.parametrize(
    "content",
    [b"this is not usd {", b"", b"PXR-USDC\x00\x07\x00\x00" + bytes(range(256)) * 4],
    ids=["garbage", "empty", "bad-crate"],
)
def test_capture_scene_is_not_usd(refuses, tmp_path, content):
    scene = tmp_path / ("scene.usdc" if content.startswith(b"PXR") else "scene.usda")
    scene.write_bytes(content)
    out = tmp_path / "out"
    args = ("capture", scene, "--camera", "/World/Camera", "--resolution", "32x18")
    refuses(scene, *args, "--out", out, absent=(out,))


def test_capture_scene_is_dev_zero(refuses, tmp_path):
    out = tmp_path / "out"
    args = ("capture", "/dev/zero", "--camera", "/World/Camera", "--resolution", "32x18")
    refuses("/dev/zero", *args, "--out", out, absent=(out,))


def test_capture_scene_sublayers_dev_zero_and_itself(refuses, tmp_path):
    scene = tmp_path / "loop.usda"
    scene.write_text(
        '#usda 1.0\n(\n    subLayers = [@/dev/zero@, @./loop.usda@]\n)\n\ndef Xform "World"\n{\n}\n'
    )
    out = tmp_path / "out"
    args = ("capture", scene, "--camera", "/World/Camera", "--resolution", "32x18")
    refuses(scene, *args, "--out", out, absent=(out,))


# ---------------------------------------------------------------------------
# run: the run folder, prompt files, masks, sources.


def _run(refuses, tmp_path, job: dict, offending, *args):
    spec = write_yaml(tmp_path / "job.yaml", job)
    runs = tmp_path / "warehouse" / RUNS
    existed = runs.exists()
    return refuses(offending, "run", spec, *args, absent=() if existed else (runs,))


def test_run_folder_is_a_file(refuses, job, warehouse, tmp_path):
    run_dir = warehouse / RUNS / job["output"]["run_name"]
    run_dir.parent.mkdir()
    run_dir.write_text("my notes about the first run\n")
    _run(refuses, tmp_path, job, run_dir)


def test_runs_folder_is_a_file(refuses, job, warehouse, tmp_path):
    runs = warehouse / RUNS
    runs.write_text("not a folder\n")
    _run(refuses, tmp_path, job, runs)


def _prompt_file(job: dict, path: Path | str) -> dict:
    variation = job["variations"][0]
    variation.pop("prompt")
    variation["prompt_file"] = str(path)
    return job


def test_prompt_file_is_dev_zero(refuses, job, tmp_path):
    _run(refuses, tmp_path, _prompt_file(job, "/dev/zero"), "/dev/zero")


@pytest.mark.parametrize("repeats", [70000, 3000], ids=["2.2MB", "96kB"])
def test_prompt_file_is_huge(refuses, job, tmp_path, repeats):
    """Every manifest line repeats the prompt: 64k characters at most."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("a photoreal warehouse at night, " * repeats)
    _run(refuses, tmp_path, _prompt_file(job, prompt), prompt)


def test_inline_prompt_is_huge(refuses, job, tmp_path):
    job["variations"][0]["prompt"] = "a photoreal warehouse at night, " * 3000
    _run(refuses, tmp_path, job, "job.yaml")


def test_prompt_file_is_binary(refuses, job, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(bytes(range(256)) * 16)
    _run(refuses, tmp_path, _prompt_file(job, prompt), prompt)


def test_prompt_file_is_a_folder(refuses, job, tmp_path):
    prompt = tmp_path / "prompts"
    prompt.mkdir()
    _run(refuses, tmp_path, _prompt_file(job, prompt), prompt)


def test_prompt_file_is_a_fifo(refuses, job, tmp_path):
    prompt = tmp_path / "prompt.fifo"
    os.mkfifo(prompt)
    _run(refuses, tmp_path, _prompt_file(job, prompt), prompt)


def test_variation_named_report(refuses, job, tmp_path):
    job["variations"][0]["name"] = "report"
    _run(refuses, tmp_path, job, "job.yaml")


def test_variation_name_with_a_path_separator(refuses, job, tmp_path):
    job["variations"][0]["name"] = "../x"
    _run(refuses, tmp_path, job, "job.yaml")


def test_run_name_escapes_the_dataset(refuses, job, tmp_path):
    job["output"]["run_name"] = "../../escape"
    _run(refuses, tmp_path, job, "job.yaml")


def test_duplicate_variation_names(refuses, job, tmp_path):
    job["variations"].append({**job["variations"][0], "seed": 7})
    _run(refuses, tmp_path, job, "job.yaml")


def test_negative_weight(refuses, job, tmp_path):
    job["controls"]["edge"]["weight"] = -0.5
    _run(refuses, tmp_path, job, "job.yaml")


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_weight_not_finite(refuses, job, tmp_path, value):
    job["controls"]["depth"]["weight"] = value
    _run(refuses, tmp_path, job, "job.yaml")


def test_unknown_control_name(refuses, job, tmp_path):
    job["controls"]["normals"] = {"weight": 0.5}
    _run(refuses, tmp_path, job, "job.yaml")


@pytest.mark.parametrize("mask", ["/dev/zero", "/etc/passwd", "/nonexistent/masks/aisle.npy"])
def test_mask_at_an_absolute_path_outside_the_dataset(refuses, job, tmp_path, mask):
    job["controls"]["edge"]["rules"] = [{"mask": mask, "value": 1.0}]
    _run(refuses, tmp_path, job, mask)


def test_mask_is_a_pickle_that_runs_code(refuses, job, tmp_path):
    """A .pt mask from elsewhere that, unpickled, would make a folder: never unpickled."""
    marker = tmp_path / "pwned"
    mask = tmp_path / "elsewhere" / "mask.pt"
    mask.parent.mkdir()

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    mask.write_bytes(pickle.dumps(Payload()))
    job["controls"]["edge"]["rules"] = [{"mask": str(mask), "value": 1.0}]
    _run(refuses, tmp_path, job, mask)
    assert not marker.exists()


def test_control_source_is_dev_zero(refuses, job, tmp_path):
    job["controls"]["depth"]["source"] = "/dev/zero"
    _run(refuses, tmp_path, job, "/dev/zero")


def test_spec_dataset_is_dev_null(refuses, job, tmp_path):
    job["input"]["dataset"] = "/dev/null"
    spec = write_yaml(tmp_path / "job.yaml", job)
    refuses("/dev/null", "run", spec)


def test_corrupt_frame_late_in_the_range(refuses, job, warehouse, tmp_path):
    """The first clip is fine; the third frame's rgb is truncated. Nothing may be written."""
    rgb = _file(warehouse, "rgb", 2, "png")
    rgb.write_bytes(rgb.read_bytes()[:200])
    job["input"].update(frames="0:3", clip_length=1)
    _run(refuses, tmp_path, job, rgb)


def test_a_picture_broken_inside_leaves_no_run_folder(refuses, job, warehouse, tmp_path):
    """Whole by its header, a flipped byte inside: found only when decoded, which the
    first clip is before the run folder is made."""
    rgb = _file(warehouse, "rgb", 0, "png")
    data = bytearray(rgb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rgb.write_bytes(bytes(data))
    _run(refuses, tmp_path, job, rgb)


def test_a_bad_frame_is_refused_before_the_model_loads(
    refuses, job, warehouse, tmp_path, monkeypatch
):
    """The model is slow to load; a truncated frame must not wait for it."""
    from bridge_core.run import models

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(models, "resolve_model", no_model)
    rgb = _file(warehouse, "rgb", 0, "png")
    rgb.write_bytes(rgb.read_bytes()[:-20])
    _run(refuses, tmp_path, job, rgb)


@pytest.mark.parametrize("brk", ["\n", "\r", "\u2028", "\x85"], ids=["lf", "cr", "ls", "nel"])
def test_init_keeps_class_names_with_line_breaks_inside_comments(cli, warehouse, tmp_path, brk):
    """A class named "crate<break>controls: ..." must not inject keys into the spec."""
    import yaml

    injected = f"crate{brk}output: {{run_name: injected}}"
    for labels in warehouse.glob("*/semantic_segmentation/*_labels_*.json"):
        entries = json.loads(labels.read_text())
        first = next(iter(entries))
        entries[first] = {"class": injected}
        labels.write_text(json.dumps(entries))
    spec = tmp_path / "job.yaml"
    result = cli("init", warehouse, "-o", spec)
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    assert data["output"]["run_name"] == "first_run"
    assert cli("validate", spec).exit_code == 0


def test_init_writes_no_spec_for_a_dataset_run_would_refuse(refuses, warehouse, tmp_path):
    rgb = _file(warehouse, "rgb", 3, "png")
    rgb.unlink()
    spec = tmp_path / "job.yaml"
    refuses(rgb, "init", warehouse, "-o", spec, absent=(spec,))


def test_model_folder_that_does_not_exist(refuses, cli, warehouse, tmp_path):
    """A path is not taken for a hub id (which would fail with the hub's own error)."""
    spec = tmp_path / "job.yaml"
    assert cli("init", warehouse, "-o", spec).exit_code == 0
    nowhere = tmp_path / "models" / "nowhere"
    result = refuses(nowhere, "run", spec, "--model", nowhere, absent=(warehouse / RUNS,))
    assert "no such model folder" in result.stderr


def test_attention_kernel_this_machine_lacks(refuses, cli, warehouse, tmp_path):
    """flash_attn needs the flash-attn package, which a CPU machine does not have."""
    import yaml

    spec = tmp_path / "job.yaml"
    assert cli("init", warehouse, "-o", spec).exit_code == 0
    data = yaml.safe_load(spec.read_text())
    data["model"].update(id="tiny", attention="flash_attn")
    write_yaml(spec, data)
    refuses("model.attention", "run", spec, absent=(warehouse / RUNS,))


def test_chunk_length_the_vae_cannot_take(refuses, job, tmp_path):
    job["model"]["frames_per_chunk"] = 10
    refuses("frames_per_chunk", "validate", write_yaml(tmp_path / "job.yaml", job))


def test_inspect_names_a_truncated_picture(refuses, warehouse):
    rgb = _file(warehouse, "rgb", 5, "png")
    rgb.write_bytes(rgb.read_bytes()[:300])
    refuses(rgb, "inspect", warehouse)


def test_a_second_run_is_refused_before_the_model_loads(
    refuses, job, warehouse, tmp_path, monkeypatch
):
    """A live run holds the run folder's lock: the second one waits for no model load."""
    import socket

    from bridge_core.run import models
    from bridge_core.run.files import LOCK_FILE

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded though another run holds the folder")

    monkeypatch.setattr(models, "resolve_model", no_model)
    run_dir = warehouse / RUNS / job["output"]["run_name"]
    run_dir.mkdir(parents=True)
    (run_dir / LOCK_FILE).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    _run(refuses, tmp_path, job, "another cosmos-bridge run")


def test_validate_checks_the_dataset_as_run_would(refuses, job, warehouse, tmp_path):
    """validate must not call valid a spec that run refuses for its dataset."""
    labels = _labels(warehouse)
    labels.write_text(json.dumps({"(0, 0, 0, 255)": 7}))
    refuses(labels, "validate", write_yaml(tmp_path / "job.yaml", job))


def test_validate_checks_control_sources_and_masks_as_run_would(refuses, job, tmp_path):
    video = tmp_path / "depth.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    job["controls"]["depth"]["source"] = str(video)
    refuses(video, "validate", write_yaml(tmp_path / "job.yaml", job))
    del job["controls"]["depth"]["source"]
    mask = tmp_path / "aisle.npy"
    mask.write_bytes(_npy_header((1, 54, 96)) + b"\x00" * 100)
    job["controls"]["edge"]["rules"] = [{"mask": str(mask), "value": 1.0}]
    refuses(mask, "validate", write_yaml(tmp_path / "job.yaml", job))


def test_validate_still_accepts_a_spec_whose_dataset_is_fine(cli, job, tmp_path):
    result = cli("validate", write_yaml(tmp_path / "job.yaml", job))
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout


def test_frame_numbers_with_a_gap_are_not_one_clip(cli, tmp_path):
    """rgb 0-2 and 5-7: a clip spanning the gap would jump in time."""
    from bridge_core.datasets.detect import open_dataset

    dataset = tmp_path / "gappy"
    (dataset / CAMERA / "rgb").mkdir(parents=True)
    for i in (0, 1, 2, 5, 6, 7):
        shutil.copy(_file(WAREHOUSE, "rgb", i, "png"), _file(dataset, "rgb", i, "png"))
    clips = open_dataset(dataset).camera(CAMERA).clips(clip_length=8)
    assert [c.frame_indices for c in clips] == [[0, 1, 2], [5, 6, 7]]


def test_cosmoswriter_picture_missing_from_one_modality(refuses, tmp_path):
    """Pictures are matched by number: a missing rgb_0001 is named, not skipped over so
    that every later rgb lands beside the wrong segmentation."""
    clip = tmp_path / "cosmos" / "clip_0000"
    for name in ("rgb", "segmentation"):
        (clip / name).mkdir(parents=True)
        for i in range(3):
            picture = cv2.imread(str(_file(WAREHOUSE, "rgb", i, "png")))
            cv2.imwrite(str(clip / name / f"{name}_{i:04d}.png"), picture)
    missing = clip / "rgb" / "rgb_0001.png"
    missing.unlink()
    out = tmp_path / "out"
    refuses(missing, "controls", tmp_path / "cosmos", "--out", out, absent=(out,))


# ---------------------------------------------------------------------------
# Spec files themselves, for validate and run alike.

BOMB = (
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "input: {dataset: warehouse, cameras: *i}\n"
    "controls: {edge: {rules: [{classes: *i, value: 1}]}}\n"
    "variations: [{name: a, prompt: *i}]\n"
)
SPEC_TEXTS = {
    "yaml-bomb": ("job.yaml", BOMB.encode()),
    "yaml-list": ("job.yaml", b"- input: {dataset: warehouse}\n- controls: {edge: {}}\n"),
    "yaml-scalar": ("job.yaml", b"just some words\n"),
    "empty": ("job.yaml", b""),
    "not-utf8": (
        "job.yaml",
        "input: {dataset: warehouse}\ncontrols: {edge: {}}\n"
        "variations: [{name: a, prompt: caf\u00e9 at night}]\n".encode("latin-1"),
    ),
    "python-tag": (
        "job.yaml",
        b"input: !!python/object/apply:os.mkdir [pwned]\ncontrols: {edge: {}}\n"
        b"variations: [{name: a, prompt: p}]\n",
    ),
    "yaml-deep-nesting": ("job.yaml", b"input: " + b"[" * 50000 + b"]" * 50000 + b"\n"),
    "json-deep-nesting": ("job.json", b'{"input": ' + b"[" * 50000 + b"]" * 50000 + b"}"),
    "json-duplicate-keys": (
        "job.json",
        b'{"input": {"dataset": "warehouse"}, "controls": {"edge": {}}, '
        b'"variations": [{"name": "a", "prompt": "p"}], "input": {"dataset": "/"}}',
    ),
    "json-infinity": (
        "job.json",
        b'{"input": {"dataset": "warehouse"}, "controls": {"edge": {"weight": Infinity}}, '
        b'"variations": [{"name": "a", "prompt": "p"}]}',
    ),
    "jsonl-bad-line": (
        "jobs.jsonl",
        b'{"input": {"dataset": "warehouse"}, "controls": {"edge": {}}, '
        b'"variations": [{"name": "a", "prompt": "p"}]}\n{"input": \n',
    ),
    "over-16-mib": (
        "job.yaml",
        b"input: {dataset: warehouse}\ncontrols: {edge: {}}\n"
        b"variations: [{name: a, prompt: p}]\n" + b"# padding\n" * (17 * 2**20 // 10),
    ),
    "txt-suffix": ("job.txt", b"input: {dataset: warehouse}\n"),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(SPEC_TEXTS))
def test_bad_spec_file(refuses, fake_model, warehouse, tmp_path, command, case):
    name, content = SPEC_TEXTS[case]
    spec = tmp_path / name
    spec.write_bytes(content)
    refuses(spec, command, spec, absent=(warehouse / RUNS, tmp_path / "cwd" / "pwned"))


@pytest.mark.parametrize("command", ["validate", "run"])
def test_spec_is_dev_zero(refuses, fake_model, command):
    refuses("/dev/zero", command, "/dev/zero")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_spec_is_a_folder(refuses, fake_model, tmp_path, command):
    spec = tmp_path / "job.yaml"
    spec.mkdir()
    refuses(spec, command, spec)


def test_validate_checks_the_spec_shape_not_yaml_only(refuses, tmp_path):
    """A YAML mapping of the wrong shape: variations as a mapping, frames reversed."""
    spec = write_yaml(
        tmp_path / "job.yaml",
        {
            "input": {"dataset": "warehouse", "frames": "5:2"},
            "controls": {"edge": {}},
            "variations": {"a": "p"},
        },
    )
    refuses(spec, "validate", spec)
