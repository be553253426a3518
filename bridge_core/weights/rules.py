"""Pure functions that build spatiotemporal weight maps [T,H,W] and combine them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from bridge_core.parallel import for_each_frame

OPS = ("set", "multiply", "max", "min", "add")


def constant_map(shape: tuple[int, int, int], value: float) -> np.ndarray:
    """[T,H,W] of ``value``: a read-only view of one number, so it costs no memory."""
    return np.broadcast_to(np.float32(value), shape)


def keyframe_curve(frame_indices: Sequence[int], keyframes: Mapping[int, float]) -> np.ndarray:
    """[T] values at ``frame_indices``: linear between keyframes, held outside them."""
    keys = sorted(keyframes)
    return np.interp(frame_indices, keys, [keyframes[k] for k in keys]).astype(np.float32)


def label_matches(label: str, patterns: Iterable[str]) -> bool:
    """Does a label match any glob? A comma-joined multi-label matches on any part."""
    parts = [label, *(p.strip() for p in label.split(","))] if "," in label else [label]
    return any(fnmatch.fnmatchcase(part, pattern) for part in parts for pattern in patterns)


def segment_mask(
    ids: np.ndarray, labels: Sequence[Mapping[int, str]], patterns: Sequence[str]
) -> np.ndarray:
    """[T,H,W] bool: pixels whose segment label matches one of the glob ``patterns``.

    ``labels[t]`` maps frame t's ids to class strings or prim paths.
    """
    mask = np.zeros(ids.shape, dtype=bool)

    def match_frame(t: int) -> None:
        chosen = [i for i, label in labels[t].items() if label_matches(label, patterns)]
        if chosen:
            # One gather from a table of the chosen ids, several times faster than np.isin;
            # ids past the table (never chosen) clip to its last entry, which is False.
            table = np.zeros(max(chosen) + 2, dtype=bool)
            table[chosen] = True
            np.take(table, ids[t], out=mask[t], mode="clip")

    for_each_frame(match_frame, len(labels))
    return mask


def depth_band(depth: np.ndarray, near: float, far: float, feather: float = 0.0) -> np.ndarray:
    """[T,H,W] in [0,1]: 1 inside [near, far] metres, falling linearly to 0 over ``feather``.

    Invalid depth (inf) is outside every band.
    """
    if feather <= 0:
        return ((depth >= near) & (depth <= far)).astype(np.float32)
    inside = np.minimum(depth - (near - feather), (far + feather) - depth) / feather
    band = np.clip(inside, 0.0, 1.0).astype(np.float32)
    band[~np.isfinite(depth)] = 0.0
    return band


def combine(
    base: np.ndarray, values: np.ndarray | float, op: str, region: np.ndarray | None = None
) -> np.ndarray:
    """Apply one rule to ``base`` [T,H,W], frames spread over the cores.

    ``values`` (broadcastable to [T,H,W]) meet ``base`` through ``op``; ``region``
    [T,H,W] says where the rule applies: bool, or float in [0,1] whose fractional
    values blend (a feathered depth band). None: everywhere.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known: {OPS}")
    values = np.broadcast_to(np.asarray(values, dtype=np.float32), base.shape)
    if op == "set" and region is None:
        return values  # a read-only view: a constant or a per-frame curve costs no memory
    out = np.empty(base.shape, dtype=np.float32)

    def combine_frame(t: int) -> None:
        result = _apply(op, base[t], values[t])
        if region is None:
            out[t] = result
        elif region.dtype == bool:
            np.copyto(out[t], base[t])
            np.copyto(out[t], result, where=region[t])
        else:
            out[t] = base[t] + region[t] * (result - base[t])

    for_each_frame(combine_frame, len(base))
    return out


def _apply(op: str, base: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``op`` of two [H,W] arrays."""
    if op == "set":
        return values
    if op == "multiply":
        return base * values
    if op == "max":
        return np.maximum(base, values)
    if op == "min":
        return np.minimum(base, values)
    return base + values


def normalise_weights(maps: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cosmos normalisation: where the weights at a site sum past 1, divide by the sum.

    ``maps``: control -> [T,H,W] >= 0. Returns new arrays (or read-only views);
    inputs are untouched. Uniform maps (broadcast views of one number, as
    constant_map makes them) are summed as numbers, so the common case of plain
    per-control weights costs no per-pixel work at all; where other maps vary,
    uniform maps of the same weight share one read-only result.
    """
    uniform = {n: float(w.flat[0]) for n, w in maps.items() if not any(w.strides)}
    varying = {n: w for n, w in maps.items() if n not in uniform}
    if not varying:
        total = max(sum(uniform.values()), 1.0)
        return {n: constant_map(w.shape, uniform[n] / total) for n, w in maps.items()}
    constant = np.float32(sum(uniform.values()))
    first, *rest = varying.values()
    # 1 / max(sum, 1) once per site, then products: one division for all the maps.
    scale = np.empty(first.shape, dtype=np.float32)
    out = {name: np.empty(first.shape, dtype=np.float32) for name in varying}
    shared = {v: np.empty(first.shape, dtype=np.float32) for v in set(uniform.values()) - {1.0}}

    def normalise_frame(t: int) -> None:
        s = scale[t]
        np.add(first[t], constant, out=s)
        for w in rest:
            np.add(s, w[t], out=s)
        np.maximum(s, np.float32(1.0), out=s)
        np.divide(np.float32(1.0), s, out=s)
        for name, w in varying.items():
            np.multiply(w[t], s, out=out[name][t])
        for value, result in shared.items():
            np.multiply(s, np.float32(value), out=result[t])

    for_each_frame(normalise_frame, len(first))
    for result in (scale, *shared.values()):
        result.flags.writeable = False
    for name, value in uniform.items():
        out[name] = scale if value == 1.0 else shared[value]
    return {name: out[name] for name in maps}
