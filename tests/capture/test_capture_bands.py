"""Casting a view in bands of rows on every core writes exactly what one band writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge_core.capture import raycast
from bridge_core.capture.capture import capture_scene
from tests.capture.conftest import CAMERAS, RESOLUTION


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_bands_write_identical_files(
    tmp_path: Path, warehouse_scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = (10, 13)
    views = []
    banded = capture_scene(
        warehouse_scene,
        CAMERAS,
        tmp_path / "banded",
        frames,
        RESOLUTION,
        on_view=lambda: views.append(1),
    )
    monkeypatch.setattr(raycast, "cpu_cores", lambda: 1)
    monkeypatch.setattr(raycast, "BANDS_PER_CORE", 1)
    whole = capture_scene(warehouse_scene, CAMERAS, tmp_path / "whole", frames, RESOLUTION)
    assert len(views) == banded.views == whole.views == 6
    one, many = _files(whole.out_dir), _files(banded.out_dir)
    assert len(one) > 6 * 5
    assert one.keys() == many.keys()
    assert [name for name in one if one[name] != many[name]] == []


@pytest.mark.parametrize(("height", "count"), [(704, 8), (5, 8), (7, 3), (1, 1)])
def test_row_bands_cover_every_row_once(height: int, count: int) -> None:
    bands = raycast.row_bands(height, count)
    rows = [y for first, stop in bands for y in range(first, stop)]
    assert rows == list(range(height))
    assert len(bands) == min(count, height)
    assert all(stop > first for first, stop in bands)
