"""A plain folder of numbered pictures, read as the rgb of one camera."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np

from bridge_core.datasets.files import IMAGE_SUFFIXES, picture_size, read_rgb
from bridge_core.datasets.types import RGB, Camera, Dataset, Frame

_NUMBER = re.compile(r"(\d+)$")


def picture_files(root: Path) -> list[Path]:
    """Pictures in ``root``, ordered by the number their name ends with."""
    pictures = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]

    def key(path: Path) -> tuple[int, str]:
        match = _NUMBER.search(path.stem)
        return (int(match.group(1)) if match else -1, path.name)

    return sorted(pictures, key=key)


def read_frames_folder(root: Path) -> Dataset:
    frames = [
        Frame(
            root.name,
            i,
            frozenset({RGB}),
            loader=partial(_load, path),
            sources={RGB: path},
            probe=partial(_probe, path),
        )
        for i, path in enumerate(picture_files(root))
    ]
    return Dataset(root=root, layout="frames", cameras={root.name: Camera(root.name, [frames])})


def _load(path: Path, modality: str) -> np.ndarray:
    return read_rgb(path)


def _probe(path: Path, modality: str) -> tuple[int, int] | None:
    return picture_size(path)
