"""A control's weight map [T,H,W] for one clip, from its spec: a base weight, then rules."""

from __future__ import annotations

import numpy as np

from bridge_core.datasets.types import DEPTH, INSTANCE, SEMANTIC, Clip
from bridge_core.spec.models import (
    ClassRule,
    ControlSpec,
    DepthBandRule,
    InstanceRule,
    KeyframeRule,
    MaskRule,
)
from bridge_core.weights.masks import fit_mask, read_mask_array
from bridge_core.weights.rules import (
    combine,
    constant_map,
    depth_band,
    keyframe_curve,
    segment_mask,
)


def weight_map(clip: Clip, control: ControlSpec, field: str = "controls") -> np.ndarray:
    """[T,H,W] float32 >= 0 (every rule value is), before normalisation across controls.

    ``field`` names the control in errors (``controls.edge``).
    """
    t = len(clip)
    h, w = clip.size
    result = constant_map((t, h, w), control.weight)
    for i, rule in enumerate(control.rules):
        where = f"{field}.rules[{i}]"
        if isinstance(rule, ClassRule):
            region = segment_mask(*_segments(clip, SEMANTIC, where), rule.classes)
            result = combine(result, rule.value, rule.op, region)
        elif isinstance(rule, InstanceRule):
            region = segment_mask(*_segments(clip, INSTANCE, where), rule.prim_paths)
            result = combine(result, rule.value, rule.op, region)
        elif isinstance(rule, KeyframeRule):
            curve = keyframe_curve(clip.frame_indices, rule.keyframes)
            result = combine(result, curve[:, None, None], rule.op)
        elif isinstance(rule, DepthBandRule):
            clip.require(DEPTH, "this rule", where)
            band = depth_band(clip.stack(DEPTH), *rule.depth, rule.feather)
            result = combine(result, rule.value, rule.op, band)
        elif isinstance(rule, MaskRule):
            mask = fit_mask(read_mask_array(rule.mask), clip.frame_indices, (h, w), rule.mask)
            result = combine(result, mask * np.float32(rule.value), rule.op)
    return result


def _segments(clip: Clip, modality: str, where: str) -> tuple[np.ndarray, list[dict[int, str]]]:
    """Ids [T,H,W] and per-frame labels (class strings or prim paths)."""
    clip.require(modality, "this rule", where)
    return clip.stack(modality), clip.labels(modality)
