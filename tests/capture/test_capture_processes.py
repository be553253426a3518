"""Worker processes write exactly the files one process writes."""

from __future__ import annotations

from pathlib import Path

from bridge_core.capture.capture import capture_scene
from tests.capture.conftest import CAMERAS, RESOLUTION


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_processes_write_identical_files(tmp_path: Path, warehouse_scene) -> None:
    frames = (10, 15)  # global numbering: output frames 0..4 whatever the first time code
    one = capture_scene(warehouse_scene, CAMERAS, tmp_path / "one", frames, RESOLUTION, workers=1)
    views = []
    two = capture_scene(
        warehouse_scene,
        CAMERAS,
        tmp_path / "two",
        frames,
        RESOLUTION,
        on_view=lambda: views.append(1),
        workers=2,
    )
    assert len(views) == two.views == one.views == 10
    single, multi = _files(one.out_dir), _files(two.out_dir)
    assert len(single) > 10 * 5
    assert single.keys() == multi.keys()
    assert [name for name in single if single[name] != multi[name]] == []
