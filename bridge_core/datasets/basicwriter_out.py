"""Writing Replicator BasicWriter files: names, folder layouts, dtypes and json formats.

Everything here was checked against real BasicWriter output (shared/realdata/
replicator-basicwriter-ycb); the reader in :mod:`bridge_core.datasets.basicwriter` reads it back.

- Layout: flat ``<root>/<annotator>[_<kind>]_NNNN.<ext>`` for one render product,
  ``<root>/<RenderProduct>/<annotator>/<annotator>[_<kind>]_NNNN.<ext>`` for several.
- Colourised segmentation: RGBA png; label json keys are ``"(R, G, B, A)"`` strings,
  (0,0,0,0) BACKGROUND, (0,0,0,255) UNLABELLED; instance and semantic palettes differ.
- camera_params: 16-float row-major matrices in the row-vector convention
  (``p_cam = p_world @ cameraViewTransform``), camera looking along -Z, reversed-Z projection.
- metadata.txt: ``{"name": "BasicWriter", "version": "0.0.2", "replicator_global_seed:": N}``
  (the key really ends in a colon upstream).
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge_core.outputs import PNG_COMPRESSION, check_inside, png_flags

RGBA = tuple[int, int, int, int]

BACKGROUND: RGBA = (0, 0, 0, 0)
UNLABELLED: RGBA = (0, 0, 0, 255)
BASICWRITER_VERSION = "0.0.2"
# Replicator names render products Replicator, Replicator_01, Replicator_02, ...
RENDER_PRODUCT_BASENAME = "Replicator"

BOUNDING_BOX_2D_DTYPE = np.dtype(
    [
        ("semanticId", "<u4"),
        ("x_min", "<i4"),
        ("y_min", "<i4"),
        ("x_max", "<i4"),
        ("y_max", "<i4"),
        ("occlusionRatio", "<f4"),
    ]
)


def render_product_names(count: int) -> list[str]:
    """Replicator's default render product names for ``count`` cameras."""
    return [
        RENDER_PRODUCT_BASENAME if i == 0 else f"{RENDER_PRODUCT_BASENAME}_{i:02d}"
        for i in range(count)
    ]


@dataclass(frozen=True)
class BasicWriterLayout:
    """Where BasicWriter puts each file: flat for one render product, nested for several."""

    root: Path
    flat: bool

    def file(
        self, render_product: str, annotator: str, frame: int, kind: str = "", ext: str = "json"
    ) -> Path:
        """``[<rp>/<annotator>/]<annotator>[_<kind>]_NNNN.<ext>``, parent folder created;
        OutsideOutputError where a link would lead it out of ``root``."""
        folder = self.root if self.flat else self.root / render_product / annotator
        check_inside(folder, self.root).mkdir(parents=True, exist_ok=True)
        path = folder / f"{annotator}{'_' + kind if kind else ''}_{frame:04d}.{ext}"
        check_inside(path, self.root)
        return path


def color_key(color: Sequence[int]) -> str:
    """``"(R, G, B, A)"``, exactly as the real label json spells its keys."""
    return str(tuple(int(c) for c in color))


def palette(n: int, seed: int) -> list[RGBA]:
    """n distinct RGBA colours like Replicator's colorize: evenly spaced hues at S 0.9, V 1.0
    (so channels run 25..255), shuffled with a fixed seed."""
    rng = np.random.default_rng(seed)
    start = rng.random()
    cols = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((start + i / n) % 1.0, 0.9, 1.0)
        cols.append((round(r * 255), round(g * 255), round(b * 255), 255))
    order = rng.permutation(n)
    return [cols[i] for i in order]


def write_png_rgba(path: Path, rgba: np.ndarray, compression: int = PNG_COMPRESSION) -> None:
    """Write an [H,W,4] uint8 RGBA picture (cv2 stores BGRA; BasicWriter's files are RGBA)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), png_flags(compression)):
        raise OSError(f"could not write {path}")


def write_json(path: Path, obj: object) -> None:
    """Compact json on one line, as BasicWriter writes it."""
    path.write_text(json.dumps(obj))


def write_metadata(root: Path, seed: int) -> None:
    """BasicWriter's metadata.txt."""
    root.mkdir(parents=True, exist_ok=True)
    meta = {"name": "BasicWriter", "version": BASICWRITER_VERSION, "replicator_global_seed:": seed}
    write_json(root / "metadata.txt", meta)


# --------------------------------------------------------------------------------------------
# camera_params
# --------------------------------------------------------------------------------------------


def view_from_camera_to_world(c2w: np.ndarray) -> np.ndarray:
    """cameraViewTransform [4,4] (world-to-camera, row-vector: p_cam = p_world @ V) from a
    rigid camera-to-world [4,4] in the same convention (translation in the last row)."""
    r = c2w[:3, :3]
    v = np.eye(4)
    v[:3, :3] = r.T
    v[3, :3] = -c2w[3, :3] @ r.T
    return v


def projection_matrix(
    focal_length: float,
    horizontal_aperture: float,
    resolution: tuple[int, int],
    near_far: tuple[float, float],
    aperture_offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """cameraProjection [4,4], row-vector, reversed-Z (near -> ndc z 1, far -> 0), the layout of
    the real files: [[a,0,0,0],[0,b,0,0],[ox,oy,c,-1],[0,0,d,0]].

    Isaac renders square pixels fitted to the horizontal aperture, so b = a * W / H whatever the
    USD vertical aperture says. The aperture offset (same units as the aperture) shifts the
    principal point the way the project's reader interprets it: +x right, +y up.
    """
    w, h = resolution
    near, far = near_far
    a = 2.0 * focal_length / horizontal_aperture
    p = np.zeros((4, 4))
    p[0, 0] = a
    p[1, 1] = a * w / h
    if any(aperture_offset):  # only when set, so the usual zeros are not written as -0.0
        # ndc_x = a x / -z - p[2,0]: a positive offset moves the principal point right (+ndc).
        p[2, 0] = -2.0 * aperture_offset[0] / horizontal_aperture
        p[2, 1] = -2.0 * aperture_offset[1] / horizontal_aperture * w / h
    p[2, 2] = near / (far - near)
    p[2, 3] = -1.0
    p[3, 2] = near * far / (far - near)
    return p


def camera_params_dict(
    *,
    view: np.ndarray,
    projection: np.ndarray,
    resolution: tuple[int, int],
    focal_length: float,
    aperture: tuple[float, float],
    near_far: tuple[float, float],
    aperture_offset: tuple[float, float] = (0.0, 0.0),
    focus_distance: float = 0.0,
    f_stop: float = 0.0,
    meters_per_scene_unit: float = 1.0,
) -> dict[str, Any]:
    """The camera_params annotator's dict, keys in BasicWriter's order and with its types."""
    return {
        "cameraAperture": [float(aperture[0]), float(aperture[1])],
        "cameraApertureOffset": [float(aperture_offset[0]), float(aperture_offset[1])],
        "cameraFisheyeLensP": [],
        "cameraFisheyeLensS": [],
        "cameraFisheyeMaxFOV": 0.0,
        "cameraFisheyeNominalHeight": 0,
        "cameraFisheyeNominalWidth": 0,
        "cameraFisheyeOpticalCentre": [0.0, 0.0],
        "cameraFisheyePolynomial": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "cameraFocalLength": float(focal_length),
        "cameraFocusDistance": float(focus_distance),
        "cameraFStop": float(f_stop),
        "cameraModel": "pinhole",
        "cameraNearFar": [float(near_far[0]), float(near_far[1])],
        "cameraProjection": [float(x) for x in np.asarray(projection).ravel()],
        "cameraViewTransform": [float(x) for x in np.asarray(view).ravel()],
        "metersPerSceneUnit": float(meters_per_scene_unit),
        "renderProductResolution": [int(resolution[0]), int(resolution[1])],
    }


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One instance segment: the prim it reports and its semantic class string (Replicator
    comma-joins several labels, e.g. ``"cone,obstacle"``); label None means UNLABELLED."""

    prim_path: str
    label: str | None


@dataclass
class ColorizedSegmentation:
    """What the two colourised segmentation annotators write for one view."""

    semantic: np.ndarray  # [H,W,4] uint8 RGBA
    semantic_labels: dict[str, dict[str, str]]  # "(R, G, B, A)" -> {"class": ...}
    instance: np.ndarray  # [H,W,4] uint8 RGBA
    instance_mapping: dict[str, str]  # "(R, G, B, A)" -> prim path
    instance_semantics: dict[str, dict[str, str]]  # "(R, G, B, A)" -> {"class": ...}


def colorize_segmentation(
    ids: np.ndarray,
    segments: Sequence[Segment],
    instance_colors: Sequence[RGBA],
    semantic_colors: Mapping[str, RGBA],
) -> ColorizedSegmentation:
    """Colourise segment ids [H,W] (index into ``segments``, negative = no hit = BACKGROUND).

    Unlabelled segments are UNLABELLED (0,0,0,255) in both pictures, as Replicator draws them.
    Json entries follow the order of the ids present, after BACKGROUND and UNLABELLED.
    """
    # Row 0 of each lookup table is BACKGROUND; segment i lives in row i + 1.
    lookup = np.maximum(np.asarray(ids, np.int32), -1) + 1
    sem_lut = np.zeros((len(segments) + 1, 4), np.uint8)
    ins_lut = np.zeros((len(segments) + 1, 4), np.uint8)
    sem_labels = {
        color_key(BACKGROUND): {"class": "BACKGROUND"},
        color_key(UNLABELLED): {"class": "UNLABELLED"},
    }
    ins_map = {color_key(BACKGROUND): "BACKGROUND", color_key(UNLABELLED): "UNLABELLED"}
    ins_sem = {
        color_key(BACKGROUND): {"class": "BACKGROUND"},
        color_key(UNLABELLED): {"class": "UNLABELLED"},
    }
    present = np.flatnonzero(np.bincount(lookup.ravel(), minlength=len(segments) + 1)[1:])
    for i in present:
        segment = segments[i]
        if segment.label is None:
            sem_lut[i + 1] = ins_lut[i + 1] = UNLABELLED
            continue
        sem_color, ins_color = semantic_colors[segment.label], instance_colors[i]
        sem_lut[i + 1], ins_lut[i + 1] = sem_color, ins_color
        sem_labels[color_key(sem_color)] = {"class": segment.label}
        ins_map[color_key(ins_color)] = segment.prim_path
        ins_sem[color_key(ins_color)] = {"class": segment.label}
    sem_img, ins_img = _gather_rgba(sem_lut, lookup), _gather_rgba(ins_lut, lookup)
    return ColorizedSegmentation(sem_img, sem_labels, ins_img, ins_map, ins_sem)


def _gather_rgba(lut: np.ndarray, index: np.ndarray) -> np.ndarray:
    """lut [N,4] uint8 at index [H,W] -> [H,W,4] uint8, one 4-byte gather per pixel
    (several times faster than gathering rows of four bytes)."""
    packed = np.take(lut.view(np.uint32)[:, 0], index)
    return packed.view(np.uint8).reshape(*index.shape, 4)


# --------------------------------------------------------------------------------------------
# One view (render product x frame)
# --------------------------------------------------------------------------------------------


@dataclass
class BoundingBoxes2D:
    """bounding_box_2d_tight: rows [N] of BOUNDING_BOX_2D_DTYPE, {"<semanticId>": {"class"}}
    and one prim path per row."""

    rows: np.ndarray
    labels: dict[str, dict[str, str]]
    prim_paths: list[str]


@dataclass
class ViewAnnotations:
    """Everything one render product writes for one frame; None fields are not written."""

    rgb: np.ndarray | None = None  # [H,W,4] uint8 RGBA
    distance_to_image_plane: np.ndarray | None = None  # [H,W] float32 metres, inf = no hit
    distance_to_camera: np.ndarray | None = None  # [H,W] float32 metres, inf = no hit
    normals: np.ndarray | None = None  # [H,W,4] float32: xyz + 1 on hits, zeros elsewhere
    segmentation: ColorizedSegmentation | None = None
    camera_params: dict[str, Any] | None = None
    bounding_box_2d_tight: BoundingBoxes2D | None = None


def write_view(
    layout: BasicWriterLayout,
    render_product: str,
    frame: int,
    view: ViewAnnotations,
    png_compression: int = PNG_COMPRESSION,
) -> None:
    """Write one render product's files for one frame, BasicWriter names and formats."""
    f = layout.file
    if view.rgb is not None:
        write_png_rgba(f(render_product, "rgb", frame, ext="png"), view.rgb, png_compression)
    for name in ("distance_to_image_plane", "distance_to_camera", "normals"):
        array = getattr(view, name)
        if array is not None:
            np.save(f(render_product, name, frame, ext="npy"), array)
    seg = view.segmentation
    if seg is not None:
        sem, ins = "semantic_segmentation", "instance_segmentation"
        write_png_rgba(f(render_product, sem, frame, ext="png"), seg.semantic, png_compression)
        write_json(f(render_product, sem, frame, "labels"), seg.semantic_labels)
        write_png_rgba(f(render_product, ins, frame, ext="png"), seg.instance, png_compression)
        write_json(f(render_product, ins, frame, "mapping"), seg.instance_mapping)
        write_json(f(render_product, ins, frame, "semantics_mapping"), seg.instance_semantics)
    if view.camera_params is not None:
        write_json(f(render_product, "camera_params", frame), view.camera_params)
    boxes = view.bounding_box_2d_tight
    if boxes is not None:
        bb = "bounding_box_2d_tight"
        np.save(f(render_product, bb, frame, ext="npy"), boxes.rows)
        write_json(f(render_product, bb, frame, "labels"), boxes.labels)
        write_json(f(render_product, bb, frame, "prim_paths"), boxes.prim_paths)
