"""A run's report: per clip a contact sheet and an mp4 preview per variation; the metrics table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Column, Table

from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.files import encode_video
from bridge_core.outputs import atomic_path, check_inside, write_bytes_atomic, write_png
from bridge_core.parallel import for_each_frame
from bridge_core.report.contact_sheet import contact_sheet, pick_frames, tile, tile_size
from bridge_core.report.controls_export import SHEET_ORDER

PREVIEW_FPS = 30.0
# Score -> column title, in the tables' order: the run's two metrics and the gate's
# checks that are on by default (the others, where set, name themselves in a rejected
# clip's reasons; every score is in run.json). More would not fit 80 columns.
SCORE_COLUMNS = {
    "edge_f1": "Edge F1",
    "blur_ssim": "Blur SSIM",
    "control_lift": "lift",
    "motion_agreement": "motion",
}
# Previews are for looking at: at most this wide, so encoding them stays a small part of a run.
PREVIEW_WIDTH = 640


def sheet_controls(stack: ControlStack) -> dict[str, np.ndarray]:
    """The control videos at the contact sheet's frames (``pick_frames``), shrunk to its
    tiles, [R,h,w,3] uint8 in sheet order: all of a clip's controls its report needs."""
    rows = pick_frames(stack.shape[0])
    size = tile_size(*stack.shape[1:])
    names = [name for name in SHEET_ORDER if name in stack.videos]
    tiles = {name: np.empty((len(rows), size[1], size[0], 3), np.uint8) for name in names}
    cells = [(name, i) for name in names for i in range(len(rows))]

    def shrink(k: int) -> None:
        name, i = cells[k]
        tiles[name][i] = tile(stack.videos[name][rows[i]], size)

    for_each_frame(shrink, len(cells))
    return tiles


def clip_sheet(
    frame_indices: Sequence[int],
    input_rows: np.ndarray | None,
    controls: Mapping[str, np.ndarray],
    output_rows: Mapping[str, np.ndarray],
    rejected: Mapping[str, str] | None = None,
) -> np.ndarray:
    """A clip's contact sheet [H,W,3] uint8: input rgb | controls | each variation.

    Rows are the clip's ``pick_frames``: input_rows [R,H,W,3] uint8 (None where the
    dataset has no rgb), controls the clip's ``sheet_controls``, output_rows variation ->
    [R,H,W,3] uint8; rejected: variation -> why the quality gate rejected it (marked).
    """
    rows = pick_frames(len(frame_indices))
    columns: dict[str, np.ndarray] = {}
    if input_rows is not None:
        columns["input rgb"] = input_rows
    columns.update(controls)
    columns.update(output_rows)
    labels = [f"#{frame_indices[t]}" for t in rows]
    return contact_sheet(columns, labels, range(len(rows)), rejected)


def preview_mp4(frames: np.ndarray) -> bytes:
    """A variation's preview of a clip [T,H,W,3] uint8: H.264 mp4 at most PREVIEW_WIDTH wide."""
    return encode_video(_preview_size(frames), PREVIEW_FPS)


def write_clip_report(
    folder: Path, root: Path, sheet: np.ndarray, previews: Mapping[str, bytes]
) -> None:
    """``contact_sheet.png`` (:func:`clip_sheet`) and ``<variation>.mp4`` (:func:`preview_mp4`)
    in ``folder``, which must be inside ``root``. Each file appears whole or not at all."""
    check_inside(folder, root).mkdir(parents=True, exist_ok=True)
    for variation, data in previews.items():
        write_bytes_atomic(folder / f"{variation}.mp4", data, root)
    with atomic_path(folder / "contact_sheet.png", root) as tmp:
        write_png(tmp, sheet)


def _preview_size(frames: np.ndarray) -> np.ndarray:
    """[T,H,W,3] uint8 shrunk to PREVIEW_WIDTH wide where wider."""
    _, h, w, _ = frames.shape
    if w <= PREVIEW_WIDTH:
        return frames
    size = (PREVIEW_WIDTH, max(round(h * PREVIEW_WIDTH / w), 1))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _verdict(values: Mapping[str, Any]) -> str:
    if values.get("accepted", True):
        return "accepted"
    return "[red]rejected[/]: " + "; ".join(values.get("reasons", []))


def metrics_table(clips: Sequence[Mapping[str, Any]], means: Mapping[str, Any]) -> Table:
    """A rich table: one row per clip and variation with the gate's verdict, then the
    mean per variation (of its accepted clips).

    clips: run.json's ``metrics.clips``; means: its ``metrics.mean``.
    """
    # Figures whole; on a narrow terminal names and the gate's reasons wrap instead.
    scores = [Column(h, no_wrap=True) for h in ("frames", *SCORE_COLUMNS.values())]
    table = Table("camera", scores[0], "variation", *scores[1:], "gate", title="adherence")
    for clip in clips:
        first, last = clip["frames"]
        for variation, values in clip["variations"].items():
            cells = [_cell(values.get(key)) for key in SCORE_COLUMNS]
            table.add_row(clip["camera"], f"{first}-{last}", variation, *cells, _verdict(values))
    for variation, values in means.items():
        cells = [_cell(values.get(key)) for key in SCORE_COLUMNS]
        table.add_row("[bold]mean[/]", "", variation, *cells, "")
    return table


def acceptance_table(acceptance: Mapping[str, Mapping[str, Any]]) -> Table:
    """Clips accepted by the quality gate per variation (run.json's ``metrics.acceptance``)."""
    table = Table("variation", "clips", "accepted", "rate", title="quality gate")
    for variation, counts in acceptance.items():
        rate = counts["rate"]
        table.add_row(
            variation,
            str(counts["clips"]),
            str(counts["accepted"]),
            "-" if rate is None else f"{rate:.0%}",
        )
    return table


def worst_clips(clips: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], str]]:
    """Every (clip, variation) of run.json's ``metrics.clips``, worst first: rejected
    before accepted, then by the smallest margin to a threshold (unchecked ones last)."""
    pairs = [(clip, name) for clip in clips for name in clip["variations"]]

    def key(pair: tuple[Mapping[str, Any], str]) -> tuple[bool, float]:
        values = pair[0]["variations"][pair[1]]
        margin = values.get("margin")
        return values.get("accepted", True), np.inf if margin is None else margin

    return sorted(pairs, key=key)


def worst_clips_table(clips: Sequence[Mapping[str, Any]], limit: int) -> Table:
    """The ``limit`` worst clips (:func:`worst_clips`) as a rich table."""
    table = Table(
        "camera",
        "frames",
        "variation",
        "margin",
        *SCORE_COLUMNS.values(),
        "gate",
        title="worst clips first",
    )
    for clip, name in worst_clips(clips)[:limit]:
        values = clip["variations"][name]
        first, last = clip["frames"]
        cells = [_cell(values.get(key)) for key in SCORE_COLUMNS]
        margin = values.get("margin")
        margin_text = "-" if margin is None else f"{margin:+.0%}"
        table.add_row(
            clip["camera"], f"{first}-{last}", name, margin_text, *cells, _verdict(values)
        )
    return table
