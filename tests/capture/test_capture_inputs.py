"""Real third-party scenes capture without crashing; bad input gets a clear error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import typer
from pxr import Usd, UsdGeom
from typer.testing import CliRunner

from bridge_core.capture.capture import capture_scene
from bridge_core.capture.command import capture
from bridge_core.capture.scene import read_scene
from bridge_core.datasets.detect import open_dataset
from bridge_core.errors import InputError
from tests.capture.conftest import CAMERAS, REALDATA, WAREHOUSE

USD_WG = REALDATA / "usd-scenes" / "usd-wg"
SCENES = {
    "animated_cube": (USD_WG / "_common" / "animated_cube_translation.usda", "/World/camera"),
    "mcusd": (USD_WG / "McUsd" / "McUsd.usda", "/McUsd/Camera"),
    "normals_usda": (
        USD_WG / "NormalsTextureBiasAndScale" / "NormalsTextureBiasAndScale.usda",
        "/NormalsTextureBiasAndScale/Camera",
    ),
    "normals_usdz": (
        USD_WG / "NormalsTextureBiasAndScale" / "NormalsTextureBiasAndScale.usdz",
        "/NormalsTextureBiasAndScale/Camera",
    ),
}


@pytest.mark.parametrize("name", sorted(SCENES))
def test_usd_wg_scenes_capture(tmp_path: Path, name: str, caplog) -> None:
    scene, camera = SCENES[name]
    with caplog.at_level(logging.WARNING):
        result = capture_scene(scene, [camera], tmp_path / name, (0, 1), (96, 64))
    assert result.views == 1
    frame = open_dataset(tmp_path / name).cameras["default"].frames[0]
    assert frame.rgb.shape == (64, 96, 3) and frame.depth.shape == (64, 96)
    # All three are Y-up centimetre stages; depth comes out in metres.
    assert frame.camera_params.meters_per_unit == 0.01
    if name != "animated_cube":  # its 1-unit cube is a few pixels wide 11 m away
        assert frame.depth_valid.mean() > 0.05
    if name == "mcusd":  # its textures were deliberately not copied
        assert any("texture(s) missing" in r.getMessage() for r in caplog.records)


def test_animated_usd_wg_cube_moves(tmp_path: Path) -> None:
    """animated_cube_translation has no authored time range: its samples (0..100) give it."""
    scene, camera = SCENES["animated_cube"]
    assert read_scene(scene).time_range == (0, 100)
    capture_scene(scene, [camera], tmp_path, (40, 61), (384, 256))  # the cube: ~3 px
    hits = [np.isfinite(np.load(tmp_path / f"distance_to_camera_{i:04d}.npy")) for i in (0, 20)]
    centroids = [np.argwhere(h).mean(axis=0)[1] for h in hits]
    assert centroids[1] > centroids[0] + 1  # the cube slides along +X, right in the picture


def test_missing_camera(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"/World/Nope does not exist.*/World/Cameras/Aisle"):
        capture_scene(WAREHOUSE, ["/World/Nope"], tmp_path, (0, 1), (32, 18))
    with pytest.raises(InputError, match="is not a camera"):
        capture_scene(WAREHOUSE, ["/World/Warehouse"], tmp_path, (0, 1), (32, 18))


def test_scene_without_geometry(tmp_path: Path) -> None:
    path = tmp_path / "empty.usda"
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.Camera.Define(stage, "/Camera")
    stage.GetRootLayer().Save()
    with pytest.raises(InputError, match="no renderable geometry"):
        capture_scene(path, ["/Camera"], tmp_path / "out", None, (32, 18))


def test_unreadable_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.usda"
    garbage.write_text("this is not usd {")
    with pytest.raises(InputError, match="cannot open as a USD stage") as info:
        read_scene(garbage)
    assert info.value.path == garbage
    with pytest.raises(InputError, match="not found"):
        read_scene(tmp_path / "missing.usd")


def test_frames_outside_time_codes(warehouse_scene, tmp_path: Path) -> None:
    for frames in ((40, 60), (48, 49)):
        with pytest.raises(InputError, match=r"outside the stage's time codes 0\.\.47") as info:
            capture_scene(warehouse_scene, CAMERAS, tmp_path, frames, (32, 18))
        assert info.value.field == "--frames"


def test_bad_device_and_resolution(warehouse_scene, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not available"):
        capture_scene(warehouse_scene, CAMERAS, tmp_path, (0, 1), (32, 18), device="tpu")
    with pytest.raises(InputError, match="resolution must be positive"):
        capture_scene(warehouse_scene, CAMERAS, tmp_path, (0, 1), (0, 18))


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(capture)
    app.command("noop", hidden=True)(lambda: None)  # keeps "capture" a named subcommand
    return app


def test_command_writes_dataset_and_refuses_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["capture", str(WAREHOUSE), "--camera", CAMERAS[0], "--frames", "0:2"]
    result = runner.invoke(_cli(), [*args, "--resolution", "48x27", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "rgb_0001.png").is_file() and not (out / "rgb_0002.png").exists()
    bad = runner.invoke(_cli(), [*args, "--resolution", "48", "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, InputError) and bad.exception.field == "--resolution"
    assert not (tmp_path / "x").exists()  # nothing written on bad input
