"""Writing outputs so that a failure leaves nothing half-written behind."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from bridge_core.errors import InputError

# Our PNGs are renders and generated frames, written once and read by data loaders, so
# zlib's fastest level: ~4x faster than 9 for ~15% larger files.
PNG_COMPRESSION = 1


def png_flags(compression: int = PNG_COMPRESSION) -> list[int]:
    """cv2.imwrite / imencode flags for PNG at a zlib level. Where OpenCV lets us choose the
    row filter (4.12 and later), always "up": libpng's default tries every filter on every
    row, which costs more than the compression itself, and "up" alone makes files no larger
    on rendered pictures (measured on the sample scene: 2.4x faster to encode)."""
    flags = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        flags += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    return flags


@contextmanager
def staged_folder(out_dir: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``out_dir``; it becomes ``out_dir`` on success.

    On any error the staging folder is removed and ``out_dir`` is left as it was, so
    bad input writes nothing. An existing non-empty ``out_dir`` is refused unless
    ``overwrite``.
    """
    out_dir = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("output exists and is not a folder", out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError("output folder is not empty (pass --overwrite to replace it)", out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)


def write_png(path: Path, picture: np.ndarray) -> None:
    """Write [H,W] or [H,W,3] (uint8, or float in [0,1]) as PNG, RGB order."""
    if picture.dtype != np.uint8:
        picture = (np.clip(picture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if picture.ndim == 3:
        picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), picture, png_flags()):
        raise OSError(f"could not write {path}")
