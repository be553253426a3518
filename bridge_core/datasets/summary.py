"""What ``cosmos-bridge inspect`` reports about a dataset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bridge_core.datasets.types import SEMANTIC, Dataset


@dataclass
class CameraSummary:
    name: str
    num_frames: int
    first_frame: int
    last_frame: int
    resolution: tuple[int, int]
    modalities: list[str]
    label_annotators: list[str]


@dataclass
class DatasetSummary:
    root: str
    layout: str
    cameras: list[CameraSummary]
    class_shares: dict[str, float] = field(default_factory=dict)
    """Semantic class -> share of all labelled-frame pixels, largest first."""


def summarize(dataset: Dataset, on_frame: Callable[[], None] | None = None) -> DatasetSummary:
    """Cameras, frames, resolutions, modalities, and the semantic classes' pixel shares.

    Reading the shares touches every segmentation picture; ``on_frame`` is called
    after each one (for a progress bar).
    """
    cameras = []
    pixels: Counter[str] = Counter()
    for camera in dataset.cameras.values():
        frames = camera.frames
        annotators = sorted({a for f in frames for a in f.label_files})
        cameras.append(
            CameraSummary(
                name=camera.name,
                num_frames=len(frames),
                first_frame=frames[0].index,
                last_frame=frames[-1].index,
                resolution=camera.resolution,
                modalities=sorted({m for f in frames for m in f.modalities}),
                label_annotators=annotators,
            )
        )
        for frame in frames:
            if frame.has(SEMANTIC):
                seg = frame.semantic
                counts = np.bincount(seg.ids.ravel())
                for segment_id, count in enumerate(counts):
                    if count:
                        pixels[seg.labels.get(segment_id, "?")] += int(count)
                frame.release()
            if on_frame is not None:
                on_frame()
    total = sum(pixels.values())
    shares = {label: count / total for label, count in pixels.most_common()} if total else {}
    return DatasetSummary(str(dataset.root), dataset.layout, cameras, shares)
