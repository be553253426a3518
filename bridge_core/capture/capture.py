"""Capture a BasicWriter dataset from a USD scene: read, pose per time code, cast, write.

Per time code the scene's triangles are posed and uploaded once, then every camera (render
product) is cast against them, on every core (see raycast.py). Files are written by a small
thread pool while the next view is cast, so PNG compression and disk I/O overlap the casting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import warp as wp

from bridge_core.capture.camera import camera_pose, find_camera
from bridge_core.capture.raycast import RayCaster, ViewBuffers
from bridge_core.capture.scene import Scene, read_scene
from bridge_core.datasets.basicwriter_out import (
    RGBA,
    BasicWriterLayout,
    Segment,
    ViewAnnotations,
    colorize_segmentation,
    palette,
    render_product_names,
    write_metadata,
    write_view,
)
from bridge_core.errors import InputError

SEED = 0  # replicator_global_seed in metadata.txt; also fixes the segmentation palettes
DEFAULT_RESOLUTION = (1280, 704)  # the Transfer models' 720p frame size
_MAX_PENDING_WRITES = 4  # views queued for writing before casting waits (bounds memory)


@dataclass(frozen=True)
class CaptureResult:
    """Where the dataset went and what is in it."""

    out_dir: Path
    render_products: dict[str, str]  # render product name -> camera prim path
    time_codes: list[int]
    seconds: float

    @property
    def views(self) -> int:
        return len(self.render_products) * len(self.time_codes)


def resolve_time_codes(scene: Scene, frames: tuple[int, int | None] | None) -> list[int]:
    """Integer time codes for a (start, stop) range, stop excluded (None: to the end)."""
    first, last = scene.time_range
    if frames is None:
        return list(range(first, last + 1))
    start, stop = frames
    stop = last + 1 if stop is None else stop
    if start < first or stop - 1 > last or stop <= start:
        raise InputError(
            f"frames {start}:{stop} are outside the stage's time codes {first}..{last} "
            f"(give START:STOP with {first} <= START < STOP <= {last + 1})",
            scene.path,
            "--frames",
        )
    return list(range(start, stop))


def check_device(device: str) -> str:
    """A warp device name that exists here ("cpu", "cuda", "cuda:1"), else InputError."""
    try:
        return str(wp.get_device(device))
    except (RuntimeError, ValueError) as exc:
        have = ", ".join(str(d) for d in wp.get_devices())
        raise InputError(
            f"device {device!r} is not available here (have: {have})", None, "--device"
        ) from exc


def sun_direction(up: np.ndarray) -> np.ndarray:
    """A fixed sun high in the sky, slightly off the up axis so vertical faces differ."""
    axes = [np.roll(up, 1), np.roll(up, 2)]  # the two horizontal axes, in a fixed order
    d = 0.84 * up + 0.45 * axes[0] + 0.3 * axes[1]
    return d / np.linalg.norm(d)


def _write(
    layout: BasicWriterLayout,
    product: str,
    frame: int,
    buffers: ViewBuffers,
    params: dict,
    segments: list[Segment],
    instance_colors: list[RGBA],
    semantic_colors: dict[str, RGBA],
) -> None:
    """Colourise and write one view (runs on a writer thread)."""
    segmentation = colorize_segmentation(
        buffers.segment, segments, instance_colors, semantic_colors
    )
    annotations = ViewAnnotations(
        rgb=buffers.rgba,
        distance_to_image_plane=buffers.depth_plane,
        distance_to_camera=buffers.depth_camera,
        normals=buffers.normals,
        segmentation=segmentation,
        camera_params=params,
    )
    write_view(layout, product, frame, annotations)


def capture_scene(
    scene: Path | Scene,
    cameras: Sequence[str],
    out_dir: Path,
    frames: tuple[int, int | None] | None = None,
    resolution: tuple[int, int] = DEFAULT_RESOLUTION,
    device: str = "cpu",
    on_view: Callable[[], None] | None = None,
) -> CaptureResult:
    """Render ``cameras`` over the ``frames`` time-code range (stop excluded) into ``out_dir``
    in BasicWriter layout (flat for one camera, one folder per render product otherwise).

    Output frames are numbered from 0 as BasicWriter numbers them, whatever the first time
    code. ``on_view`` is called after each render product of each frame (for progress).
    """
    started = time.perf_counter()
    w, h = resolution
    if w <= 0 or h <= 0:
        raise InputError(f"resolution must be positive, got {w}x{h}", None, "--resolution")
    if not cameras:
        raise InputError("give at least one camera prim path", None, "--camera")
    device = check_device(device)
    if not isinstance(scene, Scene):
        scene = read_scene(scene)
    for path in cameras:
        find_camera(scene.stage, path, scene.path)
    time_codes = resolve_time_codes(scene, frames)

    products = render_product_names(len(cameras))
    layout = BasicWriterLayout(Path(out_dir), flat=len(cameras) == 1)
    write_metadata(layout.root, SEED)
    jobs = list(enumerate(time_codes))  # (output frame number, time code)
    _render_frames(scene, cameras, layout, jobs, resolution, device, on_view)
    return CaptureResult(
        out_dir=layout.root,
        render_products=dict(zip(products, cameras, strict=True)),
        time_codes=time_codes,
        seconds=time.perf_counter() - started,
    )


def _render_frames(
    scene: Scene,
    cameras: Sequence[str],
    layout: BasicWriterLayout,
    jobs: Sequence[tuple[int, int]],
    resolution: tuple[int, int],
    device: str,
    on_view: Callable[[], None] | None,
) -> None:
    """Cast and write every camera for each (output frame, time code) in ``jobs``."""
    usd_cameras = [find_camera(scene.stage, path, scene.path) for path in cameras]
    products = render_product_names(len(cameras))
    instance_colors = palette(len(scene.segments), SEED)
    semantic_colors = dict(zip(scene.classes, palette(len(scene.classes), SEED + 1), strict=True))
    caster = RayCaster(device, sun_direction(scene.up))

    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for frame, time_code in jobs:
            caster.set_geometry(scene.geometry(time_code))
            for product, camera in zip(products, usd_cameras, strict=True):
                pose = camera_pose(camera, time_code, resolution, scene.meters_per_unit)
                buffers = caster.render(pose, resolution, scene.meters_per_unit)
                pending.append(
                    pool.submit(
                        _write,
                        layout,
                        product,
                        frame,
                        buffers,
                        pose.params,
                        scene.segments,
                        instance_colors,
                        semantic_colors,
                    )
                )
                while len(pending) > _MAX_PENDING_WRITES:
                    pending.popleft().result()
                if on_view is not None:
                    on_view()
        while pending:
            pending.popleft().result()
