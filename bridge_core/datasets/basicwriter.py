"""Replicator BasicWriter output: flat (one render product) or one folder per render product.

Flat:  root/rgb_0000.png, root/distance_to_image_plane_0000.npy, ...
Multi: root/<RenderProduct>/<annotator>/<annotator>_0000.<ext>
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.datasets.files import (
    picture_size,
    read_image,
    read_json,
    read_npy,
    read_rgb,
    renumbered,
)
from bridge_core.datasets.segmentation import check_label_json, decode_segmentation, label_text
from bridge_core.datasets.types import (
    CAMERA,
    DEPTH,
    INSTANCE,
    NORMALS,
    RGB,
    SEMANTIC,
    Camera,
    CameraParams,
    Dataset,
    Frame,
    Segmentation,
)
from bridge_core.errors import DatasetError

FLAT_CAMERA = "default"
_FILE = re.compile(r"^(?P<stem>[a-z0-9_]+?)_(?P<num>\d+)\.(?P<ext>png|jpg|jpeg|npy|json)$")
# Side files of an annotator: "<annotator><suffix>_NNNN.json".
_SIDE_SUFFIXES = ("_semantics_mapping", "_prim_paths", "_mapping", "_labels")
# The annotators the reader decodes; every other annotator's files are label files.
_MODALITY_FILES = {
    RGB: ("rgb",),
    DEPTH: ("distance_to_image_plane", "distance_to_camera"),
    SEMANTIC: ("semantic_segmentation",),
    INSTANCE: ("instance_segmentation", "instance_id_segmentation"),
    NORMALS: ("normals",),
    CAMERA: ("camera_params",),
}
KNOWN_ANNOTATORS = frozenset(
    {a for names in _MODALITY_FILES.values() for a in names}
    | {
        "bounding_box_2d_tight",
        "bounding_box_2d_loose",
        "bounding_box_3d",
        "occlusion",
        "skeleton_data",
        "pointcloud",
        "motion_vectors",
    }
)


def annotator_of(stem: str) -> str:
    """``bounding_box_2d_tight_labels`` -> ``bounding_box_2d_tight``."""
    for suffix in _SIDE_SUFFIXES:
        if stem.endswith(suffix) and stem[: -len(suffix)] in KNOWN_ANNOTATORS:
            return stem[: -len(suffix)]
    return stem


def is_basicwriter_folder(folder: Path) -> bool:
    """True if ``folder`` holds flat BasicWriter files (rgb_0000.png, ...)."""
    return any(_frame_files([folder]))


def is_render_product_folder(folder: Path) -> bool:
    """True if ``folder`` holds annotator folders (rgb/rgb_0000.png, ...)."""
    return any(
        (folder / name).is_dir() and is_basicwriter_folder(folder / name)
        for name in KNOWN_ANNOTATORS
    )


def _frame_files(folders: Iterable[Path]) -> Iterable[tuple[int, str, Path]]:
    """(frame number, stem, path) of every BasicWriter-named file in ``folders``."""
    for folder in folders:
        for path in folder.iterdir():
            match = _FILE.match(path.name)
            if match and annotator_of(match["stem"]) in KNOWN_ANNOTATORS:
                yield int(match["num"]), match["stem"], path


def read_basicwriter(root: Path) -> Dataset:
    """Open a BasicWriter dataset; files are only listed here, read on access."""
    if is_basicwriter_folder(root):
        cameras = {FLAT_CAMERA: _camera(FLAT_CAMERA, [root])}
    else:
        products = sorted(p for p in root.iterdir() if p.is_dir() and is_render_product_folder(p))
        if not products:
            raise DatasetError("no BasicWriter files (rgb_0000.png, ...) found", root)
        cameras = {
            p.name: _camera(p.name, [d for d in sorted(p.iterdir()) if d.is_dir()])
            for p in products
        }
    metadata: dict[str, Any] = {}
    if (root / "metadata.txt").is_file():
        metadata = read_json(root / "metadata.txt")
    return Dataset(root=root, layout="basicwriter", cameras=cameras, metadata=metadata)


def _camera(name: str, folders: list[Path]) -> Camera:
    """A camera's frames, in one segment per run of consecutive frame numbers (frames on
    both sides of a gap are not one continuous clip)."""
    by_frame: dict[int, dict[str, Path]] = defaultdict(dict)
    for num, stem, path in _frame_files(folders):
        by_frame[num][stem] = path
    # One file per stem, to name the file a frame lacks after its neighbours' files.
    examples: dict[str, Path] = {}
    for files in by_frame.values():
        for stem, path in files.items():
            examples.setdefault(stem, path)
    segments: list[list[Frame]] = []
    for num, files in sorted(by_frame.items()):
        if not segments or segments[-1][-1].index != num - 1:
            segments.append([])
        segments[-1].append(_frame(name, num, files, examples))
    return Camera(name=name, segments=segments)


def _frame(camera: str, index: int, files: dict[str, Path], examples: dict[str, Path]) -> Frame:
    sources: dict[str, Path] = {}
    missing: dict[str, Path] = {}
    for modality, stems in _MODALITY_FILES.items():
        present = [s for s in stems if s in files]
        if present:
            sources[modality] = files[present[0]]
            continue
        elsewhere = [s for s in stems if s in examples]
        if elsewhere:
            missing[modality] = renumbered(examples[elsewhere[0]], index)
    label_files: dict[str, list[Path]] = defaultdict(list)
    for stem, path in sorted(files.items()):
        if stem != "rgb":
            label_files[annotator_of(stem)].append(path)
    return Frame(
        camera=camera,
        index=index,
        modalities=frozenset(sources),
        loader=partial(_load, files),
        label_files={k: tuple(v) for k, v in label_files.items()},
        sources=sources,
        missing=missing,
        probe=partial(_probe, files),
    )


def _probe(files: dict[str, Path], modality: str) -> tuple[int, int] | None:
    """What :meth:`Frame.probe` does for a BasicWriter frame: every file ``modality`` is
    read from checked whole (headers, label json), the picture's (H, W) returned."""
    if modality == RGB:
        return picture_size(files["rgb"])
    if modality == DEPTH:
        if "distance_to_image_plane" in files:
            return picture_size(files["distance_to_image_plane"])
        _camera_params_beside(files, files["distance_to_camera"])
        return picture_size(files["distance_to_camera"])
    if modality in (SEMANTIC, INSTANCE):
        stem = next(s for s in _MODALITY_FILES[modality] if s in files)
        side = "_labels" if modality == SEMANTIC else "_mapping"
        labels_path = _side(files, f"{stem}{side}")
        check_label_json(read_json(labels_path), labels_path)
        return picture_size(files[stem])
    if modality == NORMALS:
        return picture_size(files["normals"])
    if modality == CAMERA:
        path = files["camera_params"]
        camera_params_from_replicator(read_json(path), path)
    return None


def _load(files: dict[str, Path], modality: str) -> Any:
    if modality == RGB:
        return read_rgb(files["rgb"])
    if modality == DEPTH:
        return _load_depth(files)
    if modality == SEMANTIC:
        ids, entries = decode_segmentation(
            read_image(files["semantic_segmentation"]),
            read_json(_side(files, "semantic_segmentation_labels")),
            files["semantic_segmentation"],
            _side(files, "semantic_segmentation_labels"),
        )
        return Segmentation(ids, {i: label_text(v) for i, v in entries.items()})
    if modality == INSTANCE:
        return _load_instance(files)
    if modality == NORMALS:
        normals = read_npy(files["normals"]).astype(np.float32)
        return normals[..., :3]
    if modality == CAMERA:
        path = files["camera_params"]
        return camera_params_from_replicator(read_json(path), path)
    raise KeyError(modality)


def _side(files: dict[str, Path], stem: str) -> Path:
    if stem not in files:
        raise DatasetError(
            f"missing {stem}_NNNN.json beside the picture", next(iter(files.values())).parent
        )
    return files[stem]


def _load_depth(files: dict[str, Path]) -> np.ndarray:
    """Planar depth [H,W] float32 metres; 0, inf and NaN become inf (invalid)."""
    if "distance_to_image_plane" in files:
        depth = read_npy(files["distance_to_image_plane"])
        path = files["distance_to_image_plane"]
    else:
        path = files["distance_to_camera"]
        radial = read_npy(path)
        depth = radial_to_planar(radial, _camera_params_beside(files, path))
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise DatasetError(
            f"depth must be a float [H,W] array, got {depth.dtype} {depth.shape}", path
        )
    # np.load gave us our own array, so it may be fixed in place. NaN > 0 and 0 > 0
    # are both False, so one comparison finds every invalid pixel (inf stays inf).
    depth = depth.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore"):
        depth[~(depth > 0)] = np.inf
    return depth


def _camera_params_beside(files: dict[str, Path], depth_path: Path) -> CameraParams:
    if "camera_params" not in files:
        raise DatasetError(
            "distance_to_camera needs camera_params beside it to become planar depth", depth_path
        )
    path = files["camera_params"]
    return camera_params_from_replicator(read_json(path), path)


def radial_to_planar(radial: np.ndarray, cam: CameraParams) -> np.ndarray:
    """distance_to_camera [H,W] -> distance_to_image_plane [H,W] for a pinhole camera."""
    h, w = radial.shape[:2]
    u = (np.arange(w, dtype=np.float32) + 0.5 - cam.cx) / cam.fx
    v = (np.arange(h, dtype=np.float32) + 0.5 - cam.cy) / cam.fy
    return radial / np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)


def _load_instance(files: dict[str, Path]) -> Segmentation:
    stem = (
        "instance_segmentation" if "instance_segmentation" in files else "instance_id_segmentation"
    )
    mapping_path = _side(files, f"{stem}_mapping")
    mapping = read_json(mapping_path)
    ids, paths = decode_segmentation(read_image(files[stem]), mapping, files[stem], mapping_path)
    semantics = None
    if f"{stem}_semantics_mapping" in files:
        raw = read_json(files[f"{stem}_semantics_mapping"])
        by_key = {key: label_text(v) for key, v in raw.items()}
        semantics = {i: by_key.get(key, "UNLABELLED") for i, key in enumerate(mapping)}
    return Segmentation(ids, {i: str(p) for i, p in paths.items()}, semantics)


def camera_params_from_replicator(params: dict[str, Any], path: Path) -> CameraParams:
    """Intrinsics and pose from Replicator's camera_params json.

    Replicator's matrices are row-major with row vectors (p' = p @ M);
    cameraViewTransform is world-to-camera. Pixels are square: the horizontal
    aperture fixes fx, and fy = fx (Isaac fits the sensor horizontally).
    """
    try:
        width, height = (int(v) for v in params["renderProductResolution"])
        focal = float(params["cameraFocalLength"])
        aperture_x = float(params["cameraAperture"][0])
        offset_x, offset_y = (float(v) for v in params.get("cameraApertureOffset", (0.0, 0.0)))
        view = np.asarray(params["cameraViewTransform"], dtype=np.float64).reshape(4, 4)
        near, far = (float(v) for v in params.get("cameraNearFar", (0.01, 1e6)))
        meters = float(params.get("metersPerSceneUnit", 1.0))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DatasetError(
            f"camera_params is missing or has a malformed field ({exc})", path
        ) from exc
    numbers = (focal, aperture_x, offset_x, offset_y, near, meters, *view.flat)
    if not all(np.isfinite(numbers)):
        raise DatasetError("camera_params holds a number that is NaN or infinite", path)
    if aperture_x <= 0 or focal <= 0:
        raise DatasetError(
            "cameraFocalLength and cameraAperture must be positive", path, "cameraAperture"
        )
    fx = focal / aperture_x * width
    pixels_per_mm = width / aperture_x
    return CameraParams(
        width=width,
        height=height,
        fx=fx,
        fy=fx,
        cx=width / 2 + offset_x * pixels_per_mm,
        cy=height / 2 - offset_y * pixels_per_mm,
        cam_to_world=np.linalg.inv(view).T,
        near_far=(near, far),
        meters_per_unit=meters,
    )
