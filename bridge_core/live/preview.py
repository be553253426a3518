"""One viewport frame before and after: a one-frame live capture in a scratch folder."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.datasets.files import read_rgb
from bridge_core.errors import BridgeError
from bridge_core.live.augmenter import LiveAugmenter
from bridge_core.live.data import parse_data
from bridge_core.live.spec import live_spec
from bridge_core.run.models import ResolvedModel
from bridge_core.spec.models import JobSpec


@dataclass(frozen=True)
class Preview:
    """[H,W,3] uint8 pictures: the rendered frame and the first variation's output."""

    before: np.ndarray
    after: np.ndarray


def preview_frame(spec: JobSpec, data: Mapping[str, Any], model: ResolvedModel) -> Preview:
    """Generate the first variation of ``spec`` for one Replicator ``data`` dict.

    Goes through the same writer and run loop as a capture (a clip of one frame), so the
    preview shows what a capture would write. Raises BridgeError with the reason.
    """
    if len(parse_data(data).views) != 1:
        raise BridgeError("a preview takes the data of one render product")
    with tempfile.TemporaryDirectory(prefix="cosmos-transfer-preview-") as tmp:
        one = live_spec(
            tmp,
            spec.model_copy(update={"variations": spec.variations[:1]}),
            clip_length=1,
        )
        augmenter = LiveAugmenter(one, model)
        augmenter.write(data)
        result = augmenter.close()
        if result.error is not None:
            raise BridgeError(result.error)
        name = one.variations[0].name
        before = read_rgb(Path(tmp) / "rgb_0000.png")
        after = read_rgb(result.run_dir / name / "rgb_0000.png")
    return Preview(before, after)


def rgba_array(rgb: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(contiguous [H,W,4] uint8 RGBA, [w, h]) of an [H,W,3] uint8 picture, as
    ui.ByteImageProvider.set_data_array takes them (no per-byte Python list)."""
    h, w = rgb.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = 255
    return rgba, [w, h]
