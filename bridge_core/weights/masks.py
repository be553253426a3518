"""Weight masks from files: PNG folders, mp4, npy, safetensors, Cosmos-Transfer1 tensor files."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from bridge_core.datasets.files import (
    VIDEO_SUFFIXES,
    decode_video,
    picture_size,
    probe_video,
    read_image,
    read_npy,
)
from bridge_core.datasets.frames import picture_files
from bridge_core.errors import InputError

MASK_SUFFIXES = (".npy", ".safetensors", ".pt", ".pth", *VIDEO_SUFFIXES)


def read_mask_array(path: Path) -> np.ndarray:
    """The raw mask: [T,H,W] or [H,W] float32. Pictures and videos are scaled to [0,1]."""
    pictures = _mask_pictures(path)
    if pictures is not None:
        return np.stack([_grey(read_image(p)) for p in pictures])
    suffix = path.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        return _grey(read_image(path))
    if suffix in VIDEO_SUFFIXES:
        return decode_video(path)[..., 0].astype(np.float32) / 255.0
    if suffix == ".npy":
        return _as_map(read_npy(path), path)
    if suffix == ".safetensors":
        return _as_map(_read_safetensors(path), path)
    if suffix in (".pt", ".pth"):
        return _as_map(_read_torch_tensor(path), path)
    raise InputError(
        f"unknown mask format {suffix!r}; use a picture folder or {MASK_SUFFIXES}", path
    )


def check_mask_file(path: Path) -> None:
    """InputError naming ``path`` where a mask is sure to fail when read: missing, not a
    regular file or folder, an empty folder, a picture, .npy or video whose header says
    it is broken. Only headers are read; the mask itself is read per clip."""
    pictures = _mask_pictures(path)
    if pictures is not None:
        for picture in pictures:
            picture_size(picture)
    elif not path.is_file():
        raise InputError("is not a regular file", path)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        probe_video(path)
    else:
        picture_size(path)  # PNG and .npy headers; other kinds are read as they are


def _mask_pictures(path: Path) -> list[Path] | None:
    """The pictures of a mask folder, None for a mask file; InputError if it is neither."""
    if not path.exists():
        raise InputError("mask file is missing", path)
    if not path.is_dir():
        return None
    pictures = picture_files(path)
    if not pictures:
        raise InputError("mask folder holds no pictures", path)
    return pictures


def _grey(picture: np.ndarray) -> np.ndarray:
    scale = 65535.0 if picture.dtype == np.uint16 else 255.0
    grey = picture if picture.ndim == 2 else picture[..., 0]
    return grey.astype(np.float32) / scale


def _as_map(array: np.ndarray, path: Path) -> np.ndarray:
    # Cosmos-Transfer1 tensors may carry leading singleton axes ([1,T,H,W]).
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        raise InputError(
            f"a weight mask must be a [T,H,W] or [H,W] number array, got {array.shape}", path
        )
    return array.astype(np.float32)


def _read_safetensors(path: Path) -> np.ndarray:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise InputError(
            "reading .safetensors masks needs `pip install safetensors`", path
        ) from exc
    tensors = load_file(str(path))
    if len(tensors) != 1:
        raise InputError(f"expected one tensor in the file, found {sorted(tensors)}", path)
    return next(iter(tensors.values()))


def _read_torch_tensor(path: Path) -> np.ndarray:
    """A Cosmos-Transfer1 weight tensor, loaded with weights_only (no arbitrary unpickling)."""
    try:
        import torch
    except ImportError as exc:
        raise InputError(
            "reading .pt masks needs torch: pip install 'cosmos-transfer-bridge[model]'", path
        ) from exc
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Not torch's message: it runs to several lines and suggests weights_only=False.
        raise InputError(
            "holds Python objects besides tensors, which are never unpickled; save the mask "
            "with torch.save(tensor) or as .npy/.safetensors",
            path,
        ) from exc
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"not a plain tensor file ({reason})", path) from exc
    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"expected a tensor, found {type(tensor).__name__}", path)
    return tensor.float().numpy()


def fit_mask(
    mask: np.ndarray, frame_indices: Sequence[int], size: tuple[int, int], path: Path
) -> np.ndarray:
    """A mask for a clip: [T,H,W] float32 at the clip's (H, W) and frames.

    A [H,W] mask (or a one-frame mask) holds for every frame; otherwise mask frame
    i belongs to dataset frame i, so the same file serves every clip of a camera.
    """
    if mask.ndim == 2:
        mask = mask[None]
    if mask.shape[0] == 1:
        picked = np.repeat(mask, len(frame_indices), axis=0)
    else:
        last = max(frame_indices)
        if last >= mask.shape[0]:
            raise InputError(
                f"mask has {mask.shape[0]} frames but the clip needs frame {last}", path
            )
        picked = mask[list(frame_indices)]
    if not np.isfinite(picked).all() or picked.min() < 0:
        raise InputError("a weight mask must hold finite values >= 0", path)
    h, w = size
    if picked.shape[1:] != (h, w):
        picked = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in picked])
    return picked.astype(np.float32)
