"""``cosmos-bridge controls``: every control and weight map of every clip, as files to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.files import write_video
from bridge_core.datasets.types import RGB, Clip
from bridge_core.outputs import write_png
from bridge_core.report.contact_sheet import contact_sheet, pick_frames

SHEET_ORDER = ("depth", "seg", "edge", "blur")


def clip_folder(out_dir: Path, clip: Clip) -> Path:
    return out_dir / clip.camera / f"clip_{clip.index:04d}"


def export_clip(out_dir: Path, clip: Clip, stack: ControlStack, fps: float = 30.0) -> Path:
    """Write one clip's controls and maps under ``<out>/<camera>/clip_NNNN/``.

    Per control: ``<control>/<control>_<frame>.png`` and ``<control>.mp4``; per weight
    map: ``weights/<control>_<frame>.png`` (grey, 1 = white); and ``contact_sheet.png``.
    Returns the clip folder.
    """
    folder = clip_folder(out_dir, clip)
    for name in stack.names:
        video = stack.videos[name]
        for t, index in enumerate(clip.frame_indices):
            write_png(folder / name / f"{name}_{index:04d}.png", video[t])
            write_png(folder / "weights" / f"{name}_{index:04d}.png", stack.weights[name][t])
        write_video(folder / f"{name}.mp4", (video * 255 + 0.5).astype(np.uint8), fps)
    columns: dict[str, np.ndarray] = {}
    if RGB in clip.modalities:
        columns["rgb"] = clip.stack(RGB)
    # The order a person reads a sheet in: geometry first, then appearance.
    columns.update({name: stack.videos[name] for name in SHEET_ORDER if name in stack.videos})
    columns.update({f"{name} weight": stack.weights[name] for name in stack.names})
    labels = [f"#{i}" for i in clip.frame_indices]
    sheet = contact_sheet(columns, labels, pick_frames(len(clip)))
    write_png(folder / "contact_sheet.png", sheet)
    return folder
