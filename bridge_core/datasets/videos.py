"""Cosmos-Transfer control videos: an mp4 per control, grouped by name.

Cosmos-Transfer1 names them ``<name>_<control>.mp4`` side by side
(example1_depth.mp4, example1_input_video.mp4); Cosmos-Transfer2.5 puts them in
per-control folders (car_example/edge/car_edge.mp4). Either way, each ``<name>``
is a camera, its input video is the rgb and the others are control pictures.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np

from bridge_core.datasets.files import VIDEO_SUFFIXES, VideoFile
from bridge_core.datasets.types import RGB, Camera, Dataset, Frame, control_modality
from bridge_core.errors import DatasetError

# File-name endings -> modality. "vis" is Cosmos-Transfer1's name for blur.
_KINDS = {
    "input_video": RGB,
    "input": RGB,
    "rgb": RGB,
    "edge": control_modality("edge"),
    "edges": control_modality("edge"),
    "depth": control_modality("depth"),
    "seg": control_modality("seg"),
    "segmentation": control_modality("seg"),
    "vis": control_modality("blur"),
    "blur": control_modality("blur"),
}
_NAME = re.compile(
    r"^(?P<name>.+?)_(?P<kind>" + "|".join(sorted(_KINDS, key=len, reverse=True)) + r")$"
)


def video_files(root: Path) -> list[Path]:
    """Videos in ``root`` and its direct subfolders (the Transfer2.5 layout)."""
    if root.is_file():
        return [root] if root.suffix.lower() in VIDEO_SUFFIXES else []
    found = [p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    for sub in root.iterdir():
        if sub.is_dir():
            found += [p for p in sub.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    return sorted(found)


def split_video_name(path: Path) -> tuple[str, str]:
    """(camera name, modality) of a video file.

    ``example1_depth.mp4`` -> ("example1", control/depth); a video named only by its
    kind (``segmentation.mp4``) belongs to its folder; any other video is an rgb.
    """
    if path.stem in _KINDS:
        return path.parent.name, _KINDS[path.stem]
    match = _NAME.match(path.stem)
    if match is None:
        return path.stem, RGB
    return match["name"], _KINDS[match["kind"]]


def read_control_videos(root: Path) -> Dataset:
    """Open a folder of control videos (or one video file) as a dataset."""
    groups: dict[str, dict[str, VideoFile]] = {}
    for path in video_files(root):
        name, modality = split_video_name(path)
        if path.stem.endswith(("_mask", "_weights")):
            continue  # weight masks are spec inputs, not frames
        group = groups.setdefault(name, {})
        if modality in group:
            both = f"{group[modality].path.name} and {path.name}"
            raise DatasetError(f"two videos give {modality} of {name!r}: {both}", root)
        group[modality] = VideoFile(path)
    if not groups:
        raise DatasetError("no video files found", root)
    cameras = {name: _camera(name, videos) for name, videos in sorted(groups.items())}
    return Dataset(root=root, layout="control-videos", cameras=cameras)


def _camera(name: str, videos: dict[str, VideoFile]) -> Camera:
    lengths = {m: v.num_frames for m, v in videos.items()}
    sizes = {(v.width, v.height) for v in videos.values()}
    if len(sizes) > 1:
        raise DatasetError(
            f"videos of {name!r} differ in size: "
            + ", ".join(f"{v.path.name} {v.width}x{v.height}" for v in videos.values()),
            next(iter(videos.values())).path.parent,
        )
    # Videos of one camera may differ by a few frames (encoders drop the tail);
    # frames exist where every video has them.
    count = min(lengths.values())
    modalities = frozenset(videos)
    frames = [
        Frame(camera=name, index=i, modalities=modalities, loader=partial(_load, videos, i))
        for i in range(count)
    ]
    return Camera(name=name, segments=[frames])


def _load(videos: dict[str, VideoFile], index: int, modality: str) -> np.ndarray:
    frame = videos[modality].frame(index)
    if modality == RGB:
        return frame
    return frame.astype(np.float32) / 255.0
