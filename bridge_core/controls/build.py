"""From a clip and the spec's controls to a ControlStack: pick each control's source,
build its video, build its weight map, normalise the maps across controls."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from bridge_core.controls.blur import blurred_small, upscaled
from bridge_core.controls.depth import depth_control
from bridge_core.controls.edge import (
    canny_edges,
    depth_edges,
    edge_control,
    normal_edges,
    segment_edges,
)
from bridge_core.controls.presets import DEFAULT_PRESET
from bridge_core.controls.seg import seg_control
from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.files import VIDEO_SUFFIXES, VideoFile, picture_size, read_rgb
from bridge_core.datasets.frames import picture_files
from bridge_core.datasets.types import (
    DEPTH,
    INSTANCE,
    NORMALS,
    RGB,
    SEMANTIC,
    Clip,
    control_modality,
)
from bridge_core.errors import DatasetError, InputError
from bridge_core.spec.models import ControlSpec, InstanceRule
from bridge_core.weights.build import weight_map
from bridge_core.weights.rules import normalise_weights


def build_control_stack(clip: Clip, controls: Mapping[str, ControlSpec]) -> ControlStack:
    """The enabled controls' videos and normalised weight maps for ``clip``."""
    enabled = {name: spec for name, spec in controls.items() if spec.enabled}
    clip.load(modalities_needed(clip, enabled))
    # One control at a time; each spreads its frames over the cores (bridge_core.parallel).
    videos = {name: control_video(clip, name, spec) for name, spec in enabled.items()}
    maps = {name: weight_map(clip, spec, f"controls.{name}") for name, spec in enabled.items()}
    return ControlStack(videos=videos, weights=normalise_weights(maps))


def check_clip_inputs(clip: Clip, controls: Mapping[str, ControlSpec]) -> None:
    """DatasetError naming the file unless every frame of ``clip`` has whole files of
    what the enabled controls read, all of one size; only headers and label json are
    read, so a whole dataset is checked before any work or any write."""
    enabled = {name: spec for name, spec in controls.items() if spec.enabled}
    clip.check(modalities_needed(clip, enabled))


def modalities_needed(clip: Clip, controls: Mapping[str, ControlSpec]) -> set[str]:
    """What the controls may read, among what the clip has, so it is read in one pass.

    Instance ids are read only when asked for, or when there is no semantic
    segmentation to take their place.
    """
    needed = {control_modality(name) for name in controls} | {RGB, DEPTH, SEMANTIC, NORMALS}
    asks_instance = any(
        spec.source == "instance" or any(isinstance(rule, InstanceRule) for rule in spec.rules)
        for spec in controls.values()
    )
    if asks_instance or SEMANTIC not in clip.modalities:
        needed.add(INSTANCE)
    return needed & clip.modalities


def control_video(clip: Clip, name: str, spec: ControlSpec) -> np.ndarray:
    """One control's video [T,H,W,3] float32 in [0,1] for ``clip``."""
    if spec.source_path is not None:
        return read_control_source(spec.source_path, clip.frame_indices, clip.size)
    have = clip.modalities
    if spec.source == "auto" and control_modality(name) in have:
        return clip.stack(control_modality(name))
    preset = spec.preset or DEFAULT_PRESET
    field = f"controls.{name}.source"
    if name == "depth":
        clip.require(DEPTH, f"the {name} control", field)
        try:
            return depth_control(clip.stack(DEPTH))
        except DatasetError as exc:
            first = clip.frames[0].label_files.get("distance_to_image_plane", (None,))[0]
            frames = f"{clip.frame_indices[0]}-{clip.frame_indices[-1]}"
            raise DatasetError(f"camera {clip.camera!r} frames {frames}: {exc}", first) from exc
    if name == "seg":
        modality = INSTANCE if spec.source == "instance" else SEMANTIC
        if spec.source == "auto" and SEMANTIC not in have and INSTANCE in have:
            modality = INSTANCE
        clip.require(modality, f"the {name} control", field)
        return seg_control(clip.stack(modality), clip.labels(modality))
    if name == "edge":
        return edge_control(_edges(clip, spec.source, preset, field))
    if name == "blur":
        clip.require(RGB, f"the {name} control", field)
        return upscaled(rgb_blurred_small(clip, preset), clip.size)
    raise InputError(f"unknown control {name!r}", field="controls")


def _edges(clip: Clip, source: str, preset: str, field: str) -> np.ndarray:
    """Edges [T,H,W] bool from RGB, geometry, or both ("auto": both where geometry exists)."""
    have = clip.modalities
    geometry_present = bool({DEPTH, SEMANTIC, INSTANCE, NORMALS} & have)
    use_rgb = source in ("rgb", "rgb+geometry") or (source == "auto" and RGB in have)
    use_geometry = source in ("geometry", "rgb+geometry") or (source == "auto" and geometry_present)
    if use_geometry and not geometry_present:
        raise InputError(
            f"geometric edges need depth, segmentation or normals; camera {clip.camera!r} has "
            f"{', '.join(sorted(have))}",
            field=field,
        )
    if use_rgb:
        clip.require(RGB, "the edge control", field)
    # A copy: the Canny edges are kept for the Edge F1 metric.
    edges = rgb_canny(clip, preset).copy() if use_rgb else np.zeros((len(clip), *clip.size), bool)
    if use_geometry:
        if DEPTH in have:
            edges |= depth_edges(clip.stack(DEPTH))
        if NORMALS in have:
            edges |= normal_edges(clip.stack(NORMALS))
        # Semantic boundaries, not instance ones: with Canny, depth and normal edges
        # they already cover 99.8% of instance boundary pixels (1 px tolerance) on the
        # sample scenes and the real YCB capture, and save decoding a picture a frame.
        modality = SEMANTIC if SEMANTIC in have else INSTANCE if INSTANCE in have else None
        if modality is not None:
            edges |= segment_edges(clip.stack(modality))
    return edges


def rgb_canny(clip: Clip, preset: str) -> np.ndarray:
    """Canny edges [T,H,W] bool of the clip's rgb, made once per clip and preset."""
    return clip.derived(("canny", preset), lambda: canny_edges(clip.stack(RGB), preset))


def rgb_blurred_small(clip: Clip, preset: str) -> np.ndarray:
    """The blur control's blur of the clip's rgb at the size it is computed,
    [T,H/4,W/4,3] float32, made once per clip and preset."""
    return clip.derived(("blurred_small", preset), lambda: blurred_small(clip.stack(RGB), preset))


def _control_source(path: Path, last_frame: int) -> list[Path] | VideoFile:
    """The pictures or the video of a control source that holds frames 0 to
    ``last_frame``; InputError naming it otherwise."""
    if path.is_dir():
        pictures = picture_files(path)
        if last_frame >= len(pictures):
            raise InputError(f"holds {len(pictures)} pictures, frame {last_frame} needed", path)
        return pictures
    if path.suffix.lower() in VIDEO_SUFFIXES:
        video = VideoFile(path)
        if last_frame >= video.num_frames:
            raise InputError(f"holds {video.num_frames} frames, frame {last_frame} needed", path)
        return video
    raise InputError("a control source is a video or a folder of pictures", path)


def check_control_source(path: Path, last_frame: int) -> None:
    """InputError naming it unless the control source holds frames 0 to ``last_frame``,
    its pictures whole by their headers (the video's container is probed)."""
    source = _control_source(path, last_frame)
    if isinstance(source, list):
        for picture in source[: last_frame + 1]:
            picture_size(picture)


def read_control_source(path: Path, frame_indices: list[int], size: tuple[int, int]) -> np.ndarray:
    """Frames ``frame_indices`` of a control video or picture folder, [T,H,W,3] in [0,1]."""
    source = _control_source(path, max(frame_indices))
    if isinstance(source, VideoFile):
        frames = np.stack([source.frame(i) for i in frame_indices])
    else:
        frames = np.stack([read_rgb(source[i]) for i in frame_indices])
    h, w = size
    if frames.shape[1:3] != (h, w):
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames])
    return frames.astype(np.float32) / 255.0
