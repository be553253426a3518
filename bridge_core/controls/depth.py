"""Depth control: relative inverse depth in [0,1], near = bright, as the reference expects."""

from __future__ import annotations

import numpy as np

from bridge_core.errors import DatasetError

# Percentiles of inverse depth that span [0,1]; robust to a few stray pixels.
_LOW_PERCENTILE, _HIGH_PERCENTILE = 1.0, 99.0
# Percentiles are taken on every 4th pixel both ways: same range, 16x less work.
_SAMPLE_STRIDE = 4


def inverse_depth_range(depth: np.ndarray) -> tuple[float, float]:
    """Robust (low, high) of 1/depth over a whole clip [T,H,W]; inf marks invalid pixels."""
    sample = depth[:, ::_SAMPLE_STRIDE, ::_SAMPLE_STRIDE]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        sample = depth[np.isfinite(depth)]
    if sample.size == 0:
        raise DatasetError("depth has no valid pixel in the whole clip (all 0, inf or NaN)")
    low, high = np.percentile(1.0 / sample, [_LOW_PERCENTILE, _HIGH_PERCENTILE])
    return float(low), float(max(high, low + 1e-6))


def depth_control(depth: np.ndarray) -> np.ndarray:
    """Metric depth [T,H,W] (inf = invalid) -> control video [T,H,W,3] float32 in [0,1].

    One range per clip, so the picture does not flicker when an object comes near;
    invalid pixels get the far value (0).
    """
    low, high = inverse_depth_range(depth)
    scale = np.float32(1.0 / (high - low))
    with np.errstate(divide="ignore"):
        inverse = np.float32(1.0) / depth  # inf -> 0
    relative = np.clip((inverse - np.float32(low)) * scale, 0.0, 1.0)
    relative[~np.isfinite(depth)] = 0.0
    return np.repeat(relative[..., None], 3, axis=-1)
