"""Fitting a clip's controls to the resolution a model takes, and its frames back to the clip."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bridge_core.controls.stack import ControlStack
from bridge_core.run.protocol import ModelRequirements

# Segment colours must stay exact colours of the palette: no blending across borders.
_NEAREST_CONTROLS = ("seg",)


@dataclass(frozen=True)
class Fit:
    """How a clip of ``size`` (H, W) reaches the model: resized to ``scaled`` (h, w) when it
    exceeds the model's maximum, then padded at the bottom and right to multiples."""

    size: tuple[int, int]
    scaled: tuple[int, int]
    multiple: int

    @property
    def resized(self) -> bool:
        return self.scaled != self.size

    @property
    def model_size(self) -> tuple[int, int]:
        """(H, W) the model sees."""
        return tuple(-(-s // self.multiple) * self.multiple for s in self.scaled)


def plan_fit(size: tuple[int, int], needs: ModelRequirements) -> Fit:
    """The Fit of a clip of ``size`` (H, W) for a model with ``needs``.

    The clip keeps its size when the model can take it; otherwise both sides shrink by
    the same factor until the padded size fits the maximum.
    """
    h, w = size
    m = needs.resolution_multiple
    if needs.max_resolution is None:
        return Fit(size, size, m)
    max_w, max_h = (max(s // m * m, m) for s in needs.max_resolution)
    scale = min(1.0, max_w / w, max_h / h)
    scaled = (min(max(round(h * scale), 1), max_h), min(max(round(w * scale), 1), max_w))
    return Fit(size, scaled, m)


def pad_to_multiple(stack: ControlStack, multiple: int) -> ControlStack:
    """Pad a stack of shape (T, H, W) at the bottom and right to H, W multiples of ``multiple``.

    Videos [T,H,W,3] repeat their edge pixels; weight maps [T,H,W] get zeros.

    Padding rather than resizing keeps every control pixel where the dataset's labels
    are, so cropping the generated frames back to (H, W) leaves boxes and masks valid
    pixel for pixel; a resize would resample segment borders and need an inverse
    resize of the output. Zero weight means no control steers the padded border, and
    edge replication keeps the branches from seeing a false edge there.
    """
    _, h, w = stack.shape
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return stack
    space = ((0, 0), (0, pad_h), (0, pad_w))
    return ControlStack(
        videos={n: np.pad(v, (*space, (0, 0)), mode="edge") for n, v in stack.videos.items()},
        weights={n: np.pad(m, space) for n, m in stack.weights.items()},
    )


def _resize(video: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """[T,H,W(,C)] -> [T,h,w(,C)] for ``size`` (h, w); read-only views are fine."""
    h, w = size
    return np.stack(
        [cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=interpolation) for f in video]
    )


def fit_controls(stack: ControlStack, fit: Fit) -> ControlStack:
    """``stack`` of shape (T, *fit.size) -> (T, *fit.model_size): resized if needed, padded."""
    if fit.resized:
        stack = ControlStack(
            videos={
                n: _resize(
                    v, fit.scaled, cv2.INTER_NEAREST if n in _NEAREST_CONTROLS else cv2.INTER_AREA
                )
                for n, v in stack.videos.items()
            },
            weights={n: _resize(m, fit.scaled, cv2.INTER_AREA) for n, m in stack.weights.items()},
        )
    return pad_to_multiple(stack, fit.multiple)


def fit_back(frames: np.ndarray, fit: Fit) -> np.ndarray:
    """Generated frames [T, *fit.model_size, 3] uint8 -> [T, *fit.size, 3]: cropped, resized."""
    h, w = fit.scaled
    frames = frames[:, :h, :w]
    if fit.resized:
        frames = _resize(frames, fit.size, cv2.INTER_LINEAR)
    return np.ascontiguousarray(frames)
