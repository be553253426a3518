"""Opening a dataset without being told its layout."""

from __future__ import annotations

from pathlib import Path

from bridge_core.datasets.basicwriter import (
    is_basicwriter_folder,
    is_render_product_folder,
    read_basicwriter,
)
from bridge_core.datasets.cosmoswriter import clip_folders, read_cosmoswriter
from bridge_core.datasets.frames import picture_files, read_frames_folder
from bridge_core.datasets.types import Dataset
from bridge_core.datasets.videos import read_control_videos, video_files
from bridge_core.errors import DatasetError

LAYOUTS = ("basicwriter", "cosmoswriter", "control-videos", "frames")


def detect_layout(path: Path) -> str:
    """Which of LAYOUTS ``path`` is in; a DatasetError says what was expected."""
    if not path.exists():
        raise DatasetError("no such file or folder", path)
    if path.is_file():
        if video_files(path):
            return "control-videos"
        raise DatasetError("a dataset is a folder or a video file (.mp4)", path)
    if not path.is_dir():
        raise DatasetError(
            "is neither a folder nor a file (a device?); give a dataset folder", path
        )
    if clip_folders(path):
        return "cosmoswriter"
    if is_basicwriter_folder(path) or any(
        p.is_dir() and is_render_product_folder(p) for p in path.iterdir()
    ):
        return "basicwriter"
    if video_files(path):
        return "control-videos"
    if picture_files(path):
        return "frames"
    raise DatasetError(
        "not a dataset: expected Replicator BasicWriter files (rgb_0000.png or "
        "<RenderProduct>/rgb/rgb_0000.png), CosmosWriter clip_NNNN folders, "
        "control videos (.mp4) or numbered pictures",
        path,
    )


def open_dataset(path: str | Path, layout: str | None = None) -> Dataset:
    """Open the dataset at ``path``, detecting its layout unless one is given."""
    path = Path(path)
    layout = layout or detect_layout(path)
    readers = {
        "basicwriter": read_basicwriter,
        "cosmoswriter": read_cosmoswriter,
        "control-videos": read_control_videos,
        "frames": read_frames_folder,
    }
    if layout not in readers:
        raise DatasetError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}", path)
    return readers[layout](path)
