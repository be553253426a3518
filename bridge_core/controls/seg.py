"""Segmentation control: a stable colour per class (or per prim), black for background."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import cv2
import numpy as np

from bridge_core.parallel import for_each_frame

BACKGROUND_LABELS = frozenset({"BACKGROUND", "UNLABELLED", "INVALID", ""})


def label_colour(label: str) -> tuple[int, int, int]:
    """A bright colour derived from the label text alone.

    The same class gets the same colour in every frame, clip and dataset, which is
    what keeps the seg video from flickering; background stays black.
    """
    if label in BACKGROUND_LABELS:
        return (0, 0, 0)
    digest = hashlib.blake2b(label.encode(), digest_size=3).digest()
    hue = digest[0] / 255.0 * 179.0
    saturation = 160 + digest[1] % 96
    value = 160 + digest[2] % 96
    hsv = np.array([[[hue, saturation, value]]], dtype=np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def seg_control(ids: np.ndarray, labels: Sequence[dict[int, str]]) -> np.ndarray:
    """Segment ids [T,H,W] with per-frame id -> label -> control video [T,H,W,3] float32."""
    out = np.empty((*ids.shape, 3), dtype=np.float32)
    colours = {label: label_colour(label) for frame in labels for label in frame.values()}

    def colour_frame(t: int) -> None:
        size = max(max(labels[t], default=0), int(ids[t].max())) + 1
        # One RGBA colour per id packed in a uint32: a 4-byte gather is much
        # cheaper than gathering three floats per pixel.
        palette = np.zeros((size, 4), dtype=np.uint8)
        for segment_id, label in labels[t].items():
            palette[segment_id, :3] = colours[label]
        rgba = np.take(palette.view(np.uint32)[:, 0], ids[t]).view(np.uint8)
        rgb = cv2.cvtColor(rgba.reshape(*ids.shape[1:], 4), cv2.COLOR_RGBA2RGB)
        # rgb / 255 in OpenCV, whose uint8 -> float32 conversion is vectorised (numpy's
        # mixed-type multiply takes 3x as long).
        cv2.addWeighted(rgb, 1 / 255, rgb, 0.0, 0.0, dst=out[t], dtype=cv2.CV_32F)

    for_each_frame(colour_frame, len(labels))
    return out
