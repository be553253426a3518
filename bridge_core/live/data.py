"""Replicator's ``write(data)`` dicts -> BasicWriter files, without omni.

Legacy data layout (see shared/KIT_API.md): with one render product the keys are the
annotator names; with several, ``"<annotator>-<rpName>"``, plus ``"rp_<name>"`` entries
(``{"resolution": [w, h], "camera": ...}``), ``trigger_outputs`` and ``reference_time``.
Fast annotator variants (``instance_id_segmentation_fast``) write under the short name, as
BasicWriter does. Files are named and formatted exactly as BasicWriter names them, with the
functions of :mod:`bridge_core.datasets.basicwriter_out`, so the run loop reads them back
like any Replicator capture.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge_core.datasets.basicwriter_out import (
    BasicWriterLayout,
    write_json,
    write_png_rgba,
)
from bridge_core.errors import InputError

log = logging.getLogger(__name__)

RGB = "rgb"
DEPTH = "distance_to_image_plane"
SEMANTIC = "semantic_segmentation"
INSTANCE = "instance_id_segmentation"
NORMALS = "normals"
CAMERA_PARAMS = "camera_params"
# What the live writer attaches; the Kit writer asks for these annotators by name.
ANNOTATORS = (RGB, DEPTH, SEMANTIC, INSTANCE, NORMALS, CAMERA_PARAMS)
# Side files of each segmentation annotator, as BasicWriter names them.
_SEG_SIDE_FILE = {SEMANTIC: "labels", INSTANCE: "mapping"}
# Entries of a legacy data dict that are not annotator output.
_NOT_ANNOTATORS = ("trigger_outputs", "reference_time")


@dataclass
class FrameData:
    """One captured frame: per render product, annotator -> its data.

    ``flat`` is True for a single render product (BasicWriter's flat layout).
    """

    views: dict[str, dict[str, Any]]
    flat: bool
    resolutions: dict[str, tuple[int, int]] = field(default_factory=dict)


def parse_data(data: Mapping[str, Any]) -> FrameData:
    """Group a legacy ``data`` dict by render product; unknown annotators are skipped."""
    views: dict[str, dict[str, Any]] = {}
    resolutions: dict[str, tuple[int, int]] = {}
    flat = True
    for key, value in data.items():
        if key in _NOT_ANNOTATORS:
            continue
        if key.startswith("rp_"):
            if isinstance(value, Mapping) and "resolution" in value:
                w, h = (int(v) for v in value["resolution"])
                resolutions[key[3:]] = (w, h)
            continue
        # BasicWriter's rule: the annotator before the first "-", the render product after
        # the last one (annotator names never contain "-").
        parts = key.split("-")
        annotator, render_product = parts[0], parts[-1] if len(parts) > 1 else ""
        flat = flat and len(parts) == 1
        annotator = annotator.removesuffix("_fast")
        if annotator not in ANNOTATORS:
            log.debug("skipping annotator %r: the live writer does not write it", key)
            continue
        if annotator in _SEG_SIDE_FILE:
            _check_segmentation(value, key)
        views.setdefault(render_product, {})[annotator] = value
    if not views:
        raise InputError(
            f"the data dict has none of the annotators {', '.join(ANNOTATORS)} "
            f"(keys: {', '.join(map(str, data)) or 'none'})",
            field="data",
        )
    if flat and len(resolutions) == 1:
        resolutions = {"": next(iter(resolutions.values()))}
    if not flat and "" in views:
        raise InputError(
            "the data dict mixes keys with and without a render product suffix "
            "('rgb' and 'rgb-<rpName>')",
            field="data",
        )
    return FrameData(views, flat, resolutions)


def _check_segmentation(value: Any, key: str) -> None:
    """Refuse a segmentation the reader could not read back, before anything is written."""
    info = value.get("info") if isinstance(value, Mapping) else None
    if not isinstance(info, Mapping) or "data" not in value or "idToLabels" not in info:
        raise InputError("expected {'data': ..., 'info': {'idToLabels': ...}}", field=key)
    keys = [str(k) for k in info["idToLabels"]]
    if not all(k.startswith("(") for k in keys):
        raise InputError(
            "segmentation must be colorized (attach the annotator with init_params "
            "{'colorize': True}); got id keys " + ", ".join(keys[:3]),
            field=key,
        )


def write_frame(layout: BasicWriterLayout, frame: int, data: FrameData) -> None:
    """Write every render product's annotators of ``data`` as frame ``frame``."""
    for render_product, annotators in data.views.items():
        size = data.resolutions.get(render_product) or _resolution(annotators)
        for annotator, value in annotators.items():
            _WRITERS[annotator](layout, render_product, frame, annotator, value, size)


def _resolution(annotators: Mapping[str, Any]) -> tuple[int, int] | None:
    """(W, H) from camera_params, to shape buffers that come flat (a one-off get_data)."""
    params = annotators.get(CAMERA_PARAMS)
    if isinstance(params, Mapping) and "renderProductResolution" in params:
        w, h = (int(v) for v in params["renderProductResolution"])
        return w, h
    return None


def _where(render_product: str, annotator: str) -> str:
    return f"{annotator}-{render_product}" if render_product else annotator


def _image(
    value: Any, channels: int, size: tuple[int, int] | None, name: str, dtype: type
) -> np.ndarray:
    """``value`` as [H,W,channels] (or [H,W] for 1); flat buffers are shaped by ``size``."""
    array = np.asarray(value)
    if channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 1 and size is not None and array.size == size[0] * size[1] * channels:
        w, h = size
        array = array.reshape((h, w) if channels == 1 else (h, w, channels))
    expected = 2 if channels == 1 else 3
    if array.ndim != expected or (channels > 1 and array.shape[2] != channels):
        shape = "[H,W]" if channels == 1 else f"[H,W,{channels}]"
        raise InputError(f"expected a {shape} array, got shape {array.shape}", field=name)
    if array.size == 0:
        raise InputError("empty array (no frame rendered yet?)", field=name)
    return array.astype(dtype, copy=False)


def _write_rgb(
    layout: BasicWriterLayout,
    rp: str,
    frame: int,
    annotator: str,
    value: Any,
    size: tuple[int, int] | None,
) -> None:
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[2] == 3:
        array = np.concatenate([array, np.full((*array.shape[:2], 1), 255, np.uint8)], 2)
    rgba = _image(array, 4, size, _where(rp, annotator), np.uint8)
    write_png_rgba(layout.file(rp, annotator, frame, ext="png"), rgba)


def _write_array(
    layout: BasicWriterLayout,
    rp: str,
    frame: int,
    annotator: str,
    value: Any,
    size: tuple[int, int] | None,
) -> None:
    channels = 1 if annotator == DEPTH else 4
    array = _image(value, channels, size, _where(rp, annotator), np.float32)
    np.save(layout.file(rp, annotator, frame, ext="npy"), array)


def _write_segmentation(
    layout: BasicWriterLayout,
    rp: str,
    frame: int,
    annotator: str,
    value: Any,
    size: tuple[int, int] | None,
) -> None:
    name = _where(rp, annotator)
    pixels, labels = value["data"], value["info"]["idToLabels"]
    pixels = np.asarray(pixels)
    # Colorized output comes as packed RGBA uint32 [H,W]; BasicWriter views it as bytes.
    if pixels.dtype == np.uint32:
        pixels = np.ascontiguousarray(pixels).view(np.uint8).reshape(*pixels.shape[:2], -1)
    rgba = _image(pixels, 4, size, name, np.uint8)
    write_png_rgba(layout.file(rp, annotator, frame, ext="png"), rgba)
    side = layout.file(rp, annotator, frame, _SEG_SIDE_FILE[annotator])
    write_json(side, {str(k): v for k, v in labels.items()})


def _write_camera_params(
    layout: BasicWriterLayout,
    rp: str,
    frame: int,
    annotator: str,
    value: Any,
    size: tuple[int, int] | None,
) -> None:
    # Replicator hands numpy arrays and scalars; BasicWriter writes them as json lists.
    plain = {k: _plain(v) for k, v in dict(value).items()}
    write_json(layout.file(rp, annotator, frame), plain)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


_WRITERS = {
    RGB: _write_rgb,
    DEPTH: _write_array,
    NORMALS: _write_array,
    SEMANTIC: _write_segmentation,
    INSTANCE: _write_segmentation,
    CAMERA_PARAMS: _write_camera_params,
}
