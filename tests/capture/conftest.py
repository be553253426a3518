"""Captures shared by the capture tests: the sample warehouse, small and short, made once."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REALDATA = ROOT.parent / "shared" / "realdata"
WAREHOUSE = ROOT / "samples" / "scenes" / "warehouse.usda"
CAMERAS = ["/World/Cameras/Overview", "/World/Cameras/Aisle"]
RESOLUTION = (192, 108)
FRAMES = (0, 3)


@pytest.fixture(scope="session")
def warehouse_scene():
    from bridge_core.capture.scene import read_scene

    return read_scene(WAREHOUSE)


@pytest.fixture(scope="session")
def warehouse_multi(tmp_path_factory, warehouse_scene) -> Path:
    """Both cameras, time codes 0..2: BasicWriter's multi-render-product layout."""
    from bridge_core.capture.capture import capture_scene

    out = tmp_path_factory.mktemp("multi") / "warehouse"
    capture_scene(warehouse_scene, CAMERAS, out, FRAMES, RESOLUTION)
    return out


@pytest.fixture(scope="session")
def warehouse_flat(tmp_path_factory, warehouse_scene) -> Path:
    """One camera, the last two time codes: BasicWriter's flat layout."""
    from bridge_core.capture.capture import capture_scene

    out = tmp_path_factory.mktemp("flat") / "warehouse"
    capture_scene(warehouse_scene, CAMERAS[1:], out, (46, 48), RESOLUTION)
    return out
