"""Contact sheets: one PNG per clip that a person can look at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from bridge_core.parallel import for_each_frame

TILE_WIDTH = 256
_HEADER = 22
_ROW_LABEL = 64
_NOTE_LINE = 18
_REJECTED = (230, 40, 40)


def tile(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H,W], [H,W,3] float in [0,1] or uint8 -> [h,w,3] uint8 of ``size`` (w, h).

    Shrinks first, then converts: a tile is a small fraction of the picture. Shrinks by
    the largest whole factor first, where OpenCV's area resize has a fast path (a
    third of the time on 1280x704), then to ``size``.
    """
    if picture.ndim == 3 and picture.strides[-1] == 0:
        picture = picture[..., 0]  # a grey control's broadcast view: one real channel
    picture = np.ascontiguousarray(picture)
    h, w = picture.shape[:2]
    factor = min(w // size[0], h // size[1])
    if factor > 1 and w % factor == 0 and h % factor == 0:
        picture = cv2.resize(picture, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    small = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    if small.dtype != np.uint8:
        small = (np.clip(small, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if small.ndim == 2:
        small = np.repeat(small[..., None], 3, axis=2)
    return small


def tile_size(height: int, width: int) -> tuple[int, int]:
    """(w, h) of a sheet's tile for pictures of ``height`` x ``width``."""
    return TILE_WIDTH, max(round(TILE_WIDTH * height / width), 1)


def _text(
    canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int] = (235, 235, 235)
) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)


def pick_frames(num_frames: int, most: int = 4) -> list[int]:
    """Up to ``most`` evenly spaced positions in a clip, first and last included."""
    if num_frames <= most:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (most - 1)) for i in range(most)})


def contact_sheet(
    columns: Mapping[str, np.ndarray],
    frame_labels: Sequence[str],
    rows: Sequence[int],
    marks: Mapping[str, str] | None = None,
) -> np.ndarray:
    """A grid [H,W,3] uint8: one column per named video [T,H,W(,3)], one row per frame.

    ``rows`` are positions in the videos; ``frame_labels[t]`` names position t. Columns
    named in ``marks`` (name -> why) are framed in red, marked REJECTED, and the reasons
    listed under the grid.
    """
    marks = marks or {}
    first = next(iter(columns.values()))
    size = tile_size(*first.shape[1:3])
    tw, th = size
    grid_h = _HEADER + len(rows) * (th + 4)
    sheet = np.full(
        (grid_h + _NOTE_LINE * len(marks), _ROW_LABEL + len(columns) * (tw + 4), 3), 24, np.uint8
    )
    for c, name in enumerate(columns):
        x = _ROW_LABEL + c * (tw + 4)
        if name in marks:
            sheet[_HEADER - 2 : grid_h, x - 2 : x + tw + 2] = _REJECTED
            _text(sheet, f"{name} REJECTED", x + 4, 16, _REJECTED)
        else:
            _text(sheet, name, x + 4, 16)
    for i, (name, why) in enumerate(marks.items()):
        _text(sheet, f"{name} rejected: {why}", 4, grid_h + _NOTE_LINE * (i + 1) - 5, _REJECTED)
    for r, t in enumerate(rows):
        _text(sheet, frame_labels[t], 4, _HEADER + r * (th + 4) + th // 2)
    videos = list(columns.values())
    # Tiles cover their own cells only, beside the labels: drawn after them, in any order.
    cells = [(r, c) for r in range(len(rows)) for c in range(len(videos))]

    def draw(i: int) -> None:
        r, c = cells[i]
        y, x = _HEADER + r * (th + 4), _ROW_LABEL + c * (tw + 4)
        sheet[y : y + th, x : x + tw] = tile(videos[c][rows[r]], size)

    for_each_frame(draw, len(cells))
    return sheet
