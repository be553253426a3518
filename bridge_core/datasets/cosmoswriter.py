"""Isaac Sim's CosmosWriter output: clip_NNNN/<modality>/<modality>_NNNN.png (+ <modality>.mp4).

Its depth is an 8-bit picture (not metres) and its edges are Canny over the shaded
segmentation, so both are read as ready-made control pictures; its segmentation
has no label file, so segments are named by colour.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.datasets.files import (
    IMAGE_SUFFIXES,
    VideoFile,
    picture_size,
    read_image,
    read_rgb,
    renumbered,
)
from bridge_core.datasets.segmentation import ids_from_colours
from bridge_core.datasets.types import (
    RGB,
    SEMANTIC,
    Camera,
    Dataset,
    Frame,
    Segmentation,
    control_modality,
)
from bridge_core.errors import DatasetError

CAMERA_NAME = "cosmos"
_CLIP = re.compile(r"^clip_(\d+)$")
_NUMBER = re.compile(r"(\d+)$")
_MODALITIES = {
    "rgb": RGB,
    "segmentation": SEMANTIC,
    "depth": control_modality("depth"),
    "edges": control_modality("edge"),
    "shaded_seg": control_modality("shaded_seg"),
}


def clip_folders(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and _CLIP.match(p.name)),
        key=lambda p: int(_CLIP.match(p.name).group(1)),
    )


def read_cosmoswriter(root: Path) -> Dataset:
    segments = [_clip_frames(folder) for folder in clip_folders(root)]
    segments = [s for s in segments if s]
    if not segments:
        raise DatasetError("clip folders hold no frames", root)
    return Dataset(
        root=root, layout="cosmoswriter", cameras={CAMERA_NAME: Camera(CAMERA_NAME, segments)}
    )


def _clip_frames(folder: Path) -> list[Frame]:
    """Frames of one clip folder, from its PNGs, or from its mp4s where PNGs are absent.

    Pictures are matched by the number in their name, so a picture missing from one
    modality is named as missing rather than shifting every later frame.
    """
    sources: dict[str, dict[int, Path] | VideoFile] = {}
    for name, modality in _MODALITIES.items():
        pictures = _numbered_pictures(folder / name)
        if pictures:
            sources[modality] = pictures
        elif (folder / f"{name}.mp4").is_file():
            sources[modality] = VideoFile(folder / f"{name}.mp4")
    if not sources:
        return []
    numbered = [s for s in sources.values() if isinstance(s, dict)]
    if numbered:
        numbers = sorted(set().union(*numbered))
    else:
        numbers = list(range(min(s.num_frames for s in sources.values())))
    offset = int(_CLIP.match(folder.name).group(1)) * 100_000  # frame indices unique across clips
    return [_frame(sources, offset + i, i, number) for i, number in enumerate(numbers)]


def _frame(
    sources: dict[str, dict[int, Path] | VideoFile], index: int, position: int, number: int
) -> Frame:
    files: dict[str, Path] = {}
    missing: dict[str, Path] = {}
    for modality, source in sources.items():
        if isinstance(source, VideoFile):
            files[modality] = source.path
        elif number in source:
            files[modality] = source[number]
        else:
            missing[modality] = renumbered(next(iter(source.values())), number)
    return Frame(
        CAMERA_NAME,
        index,
        frozenset(files),
        loader=partial(_load, sources, position, number),
        sources=files,
        missing=missing,
        probe=partial(_probe, sources, number),
    )


def _numbered_pictures(folder: Path) -> dict[int, Path]:
    """Pictures in ``folder`` by the number their name ends with."""
    if not folder.is_dir():
        return {}
    pictures = {}
    for path in sorted(folder.iterdir()):
        match = _NUMBER.search(path.stem)
        if path.suffix.lower() in IMAGE_SUFFIXES and match:
            pictures.setdefault(int(match.group(1)), path)
    return pictures


def _probe(
    sources: dict[str, dict[int, Path] | VideoFile], number: int, modality: str
) -> tuple[int, int] | None:
    source = sources[modality]
    if isinstance(source, VideoFile):
        return source.height, source.width
    return picture_size(source[number])


def _load(
    sources: dict[str, dict[int, Path] | VideoFile], position: int, number: int, modality: str
) -> Any:
    source = sources[modality]
    if isinstance(source, VideoFile):
        picture = source.frame(position)
    elif modality == RGB:
        picture = read_rgb(source[number])
    else:
        picture = read_image(source[number])
    if modality == RGB:
        return picture
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    if modality == SEMANTIC:
        ids, labels = ids_from_colours(picture)
        return Segmentation(ids, labels)
    return picture[:, :, :3].astype(np.float32) / 255.0
