"""Decoding Replicator's segmentation pictures and label json into ids + labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.errors import DatasetError

_COLOUR_KEY = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")


def parse_colour_key(key: str) -> tuple[int, int, int, int] | None:
    """``"(25, 255, 82, 255)"`` -> (25, 255, 82, 255); None if the key is not a colour."""
    match = _COLOUR_KEY.match(key.strip())
    if match is None:
        return None
    r, g, b, a = match.groups()
    return int(r), int(g), int(b), int(a) if a is not None else 255


def label_text(value: Any) -> str:
    """The class string of one label entry: ``{"class": "cone,obstacle"}`` -> "cone,obstacle"."""
    if isinstance(value, dict):
        if "class" in value:
            return str(value["class"])
        return ",".join(str(v) for v in value.values())
    return str(value)


def pack_rgba(image: np.ndarray) -> np.ndarray:
    """[H,W,4] uint8 -> [H,W] uint32 (one number per colour, for fast lookups)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return image.view(np.uint32)[..., 0]


def _pack_colours(colours: list[tuple[int, int, int, int]]) -> np.ndarray:
    return pack_rgba(np.asarray(colours, dtype=np.uint8).reshape(1, -1, 4))[0]


# Up to this many colours, one equality pass per colour beats a binary search
# per pixel (about 4x at 6 colours); segmentations with more go by search.
_LINEAR_LOOKUP_MAX = 12


def ids_of_colours(packed: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Packed colours [H,W] -> the index in ``keys`` of each pixel's colour, -1 if absent."""
    if len(keys) <= _LINEAR_LOOKUP_MAX:
        ids = np.full(packed.shape, -1, dtype=np.int32)
        for i, key in enumerate(keys):
            np.copyto(ids, np.int32(i), where=packed == key)
        return ids
    order = np.argsort(keys)
    pos = np.minimum(np.searchsorted(keys[order], packed), len(keys) - 1)
    return np.where(keys[order][pos] == packed, order[pos], -1).astype(np.int32)


def check_label_json(labels: Any, labels_path: Path) -> None:
    """DatasetError naming the file unless ``labels`` (a parsed label json) maps keys to
    Replicator's {"class": ...} mappings (semantic) or to strings (prim paths, classes)."""
    if not isinstance(labels, dict):
        raise DatasetError(
            f"label json must map colours or ids to labels, not be a {type(labels).__name__}",
            labels_path,
        )
    for key, value in labels.items():
        if not isinstance(value, (str, dict)):
            raise DatasetError(
                f"label {key!r} is a {type(value).__name__}; labels are class mappings "
                'like {"class": "floor"} or strings',
                labels_path,
            )


def decode_segmentation(
    image: np.ndarray, labels: dict[str, Any], image_path: Path, labels_path: Path
) -> tuple[np.ndarray, dict[int, Any]]:
    """Turn a segmentation picture + its label json into ids [H,W] int32 and id -> entry.

    Colorized pictures (RGBA, keys "(R, G, B, A)") get ids in the order of the json
    keys; id pictures ([H,W] integers, keys "0", "1", ...) keep their ids. Any pixel
    value the json does not name is an error, since its label would be lost.
    """
    check_label_json(labels, labels_path)
    if image.ndim == 3:
        if image.shape[2] == 3:
            image = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], 2)
        keys: list[tuple[int, int, int, int]] = []
        entries: dict[int, Any] = {}
        for key, value in labels.items():
            colour = parse_colour_key(key)
            if colour is None:
                raise DatasetError(
                    f"label key {key!r} is not an '(R, G, B, A)' colour", labels_path
                )
            entries[len(keys)] = value
            keys.append(colour)
        if not keys:
            raise DatasetError("label json is empty", labels_path)
        ids = ids_of_colours(pack_rgba(image), _pack_colours(keys))
        if ids.min() < 0:
            y, x = np.argwhere(ids < 0)[0]
            raise DatasetError(
                f"pixel ({x}, {y}) has colour {tuple(int(c) for c in image[y, x])}, "
                f"which {labels_path.name} does not label",
                image_path,
            )
        return ids, entries
    try:
        entries = {int(k): v for k, v in labels.items()}
    except ValueError as exc:
        raise DatasetError(
            f"label keys must be integer ids for an id picture ({exc})", labels_path
        ) from exc
    ids = image.astype(np.int32)
    missing = np.setdiff1d(np.unique(ids), np.fromiter(entries, dtype=np.int64, count=len(entries)))
    if missing.size:
        raise DatasetError(
            f"segment ids {missing[:5].tolist()} are not in {labels_path.name}", image_path
        )
    return ids, entries


def ids_from_colours(image: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """A colour picture with no label file: one id per distinct colour, named by colour."""
    rgba = (
        image
        if image.shape[2] == 4
        else np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], 2)
    )
    packed = pack_rgba(rgba)
    values, ids = np.unique(packed, return_inverse=True)
    colours = values.astype("<u4").view(np.uint8).reshape(-1, 4)
    labels = {i: "rgb({}, {}, {})".format(*c[:3]) for i, c in enumerate(colours.tolist())}
    return ids.reshape(packed.shape).astype(np.int32), labels
