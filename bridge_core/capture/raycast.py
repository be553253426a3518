"""Primary-ray casting with warp: one BVH over the frame's triangles, one kernel per view.

The same kernel runs on ``"cpu"`` and ``"cuda"``. Each pixel shoots one ray through its
centre, built from the written projection matrix, so pixels and camera_params cannot
disagree. A warp CPU launch runs on one core but releases the GIL, so on the CPU the view
is cast as bands of rows launched from one thread per core.

The ray direction is scaled to camera-space z = -1: the hit parameter t is then the
distance to the image plane, and t * |dir| the distance to the camera.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import warp as wp

from bridge_core.capture.camera import CameraPose
from bridge_core.capture.scene import FrameGeometry
from bridge_core.parallel import cpu_cores, for_each_frame

# Warp's banner and module-load lines would interleave with the progress bar.
wp.config.log_level = wp.LOG_WARNING
wp.set_module_options({"enable_backward": False})  # no gradients: halves compile time

AMBIENT = wp.constant(0.3)
SUN = wp.constant(0.85)
SKY_LINEAR = (0.60, 0.64, 0.70)  # flat light grey-blue where nothing is hit
MISS_SEGMENT = wp.constant(-1)
# Bands per core on the CPU: rows of sky cost little and rows of shadowed floor much, so
# several bands per core keep the cores evenly busy; each launch costs only ~0.1 ms.
BANDS_PER_CORE = 4


@wp.kernel
def _cast(
    mesh: wp.uint64,
    has_mesh: int,
    origin: wp.vec3,
    rotation: wp.mat33,
    ndc_scale: wp.vec2,
    ndc_offset: wp.vec2,
    near: float,
    far: float,
    meters_per_unit: float,
    tri_segment: wp.array(dtype=wp.int32),
    corner_normals: wp.array(dtype=wp.vec3),
    corner_colors: wp.array(dtype=wp.vec3),
    light: wp.vec3,
    sky: wp.vec3,
    first_row: int,  # of the band of rows this launch casts
    depth_plane: wp.array2d(dtype=wp.float32),
    depth_camera: wp.array2d(dtype=wp.float32),
    segment: wp.array2d(dtype=wp.int32),
    normals: wp.array2d(dtype=wp.vec4),
    rgba: wp.array3d(dtype=wp.uint8),
):
    row, x = wp.tid()
    y = first_row + row
    height = depth_plane.shape[0]
    width = depth_plane.shape[1]
    # Pixel centre -> NDC -> camera-space direction with z = -1 -> world (column vectors).
    ndc_x = 2.0 * (float(x) + 0.5) / float(width) - 1.0
    ndc_y = 1.0 - 2.0 * (float(y) + 0.5) / float(height)
    cam_dir = wp.vec3(
        (ndc_x + ndc_offset[0]) * ndc_scale[0], (ndc_y + ndc_offset[1]) * ndc_scale[1], -1.0
    )
    direction = rotation * cam_dir
    # Geometry nearer than the near clipping plane is not drawn, as in the RTX renderer.
    start = origin + near * direction

    color = sky
    hit = False
    if has_mesh != 0:
        q = wp.mesh_query_ray(mesh, start, direction, far - near)
        if q.result:
            hit = True
            t = near + q.t
            depth_plane[y, x] = t * meters_per_unit
            depth_camera[y, x] = t * wp.length(direction) * meters_per_unit
            face = q.face
            segment[y, x] = tri_segment[face]
            # Face normal towards the camera (USD surfaces are two-sided unless told otherwise).
            n_face = q.normal
            if wp.dot(n_face, direction) > 0.0:
                n_face = -n_face
            # Barycentric weights as mesh_eval_position defines them: u p0 + v p1 + w p2.
            w = 1.0 - q.u - q.v
            n = (
                corner_normals[face * 3] * q.u
                + corner_normals[face * 3 + 1] * q.v
                + corner_normals[face * 3 + 2] * w
            )
            if wp.length(n) < 1.0e-6:
                n = n_face
            else:
                n = wp.normalize(n)
                if wp.dot(n, n_face) < 0.0:
                    n = -n
            normals[y, x] = wp.vec4(n[0], n[1], n[2], 1.0)
            albedo = (
                corner_colors[face * 3] * q.u
                + corner_colors[face * 3 + 1] * q.v
                + corner_colors[face * 3 + 2] * w
            )
            # Lambert + ambient from one sun with a hard shadow: enough to read shapes.
            lit = wp.max(wp.dot(n, light), 0.0)
            if lit > 0.0:
                p = start + q.t * direction
                eps = 1.0e-4 * wp.max(t * wp.length(direction), 1.0)
                if wp.mesh_query_ray_anyhit(mesh, p + eps * n_face, light, 1.0e7):
                    lit = 0.0
            shade = AMBIENT * (0.8 + 0.2 * wp.dot(n_face, light)) + SUN * lit
            color = wp.cw_mul(albedo, wp.vec3(shade, shade, shade))
    if not hit:
        depth_plane[y, x] = wp.inf
        depth_camera[y, x] = wp.inf
        segment[y, x] = MISS_SEGMENT
        normals[y, x] = wp.vec4(0.0, 0.0, 0.0, 0.0)
    for c in range(3):
        # Linear -> sRGB-ish gamma 2.2, rounded.
        v = wp.pow(wp.clamp(color[c], 0.0, 1.0), 1.0 / 2.2)
        rgba[y, x, c] = wp.uint8(int(v * 255.0 + 0.5))
    rgba[y, x, 3] = wp.uint8(255)


@dataclass
class ViewBuffers:
    """What one view yields, as numpy: depth_plane / depth_camera [H,W] float32 metres (inf
    on miss), segment [H,W] int32 (-1 on miss), normals [H,W,4] float32, rgba [H,W,4] uint8."""

    depth_plane: np.ndarray
    depth_camera: np.ndarray
    segment: np.ndarray
    normals: np.ndarray
    rgba: np.ndarray


class RayCaster:
    """Holds the BVH of the current frame's triangles on one warp device.

    Set the geometry once per time code (:meth:`set_geometry`), then render every camera.
    A frame whose topology matches the previous one only moves points and refits the BVH.
    """

    def __init__(self, device: str, light: np.ndarray) -> None:
        self.device = device
        self.light = wp.vec3(*np.asarray(light, np.float32))
        # Compiled (or read from warp's cache) here, once: a first launch from several
        # band threads at the same time would race to load the module.
        wp.load_module(__name__, device=device)
        self._mesh: wp.Mesh | None = None
        self._triangles: np.ndarray | None = None
        self._empty = wp.zeros(1, dtype=wp.vec3, device=device)
        self._empty_int = wp.zeros(1, dtype=wp.int32, device=device)

    def set_geometry(self, geometry: FrameGeometry) -> None:
        """Upload one time code's triangles (see :class:`FrameGeometry` for the arrays)."""
        if geometry.num_triangles == 0:
            self._mesh = self._triangles = None
            return
        dev = self.device
        points = wp.array(geometry.points, dtype=wp.vec3, device=dev)
        if self._mesh is not None and np.array_equal(self._triangles, geometry.triangles):
            # Same topology (rigid motion or deformation): move the points, refit the BVH.
            self._mesh.points.assign(points)
            self._mesh.refit()
        else:
            indices = wp.array(geometry.triangles.ravel(), dtype=wp.int32, device=dev)
            self._mesh = wp.Mesh(points=points, indices=indices)
            self._triangles = geometry.triangles
        self._tri_segment = wp.array(geometry.segments, dtype=wp.int32, device=dev)
        self._normals = wp.array(geometry.corner_normals, dtype=wp.vec3, device=dev)
        self._colors = wp.array(geometry.corner_colors, dtype=wp.vec3, device=dev)

    def render(
        self, pose: CameraPose, resolution: tuple[int, int], meters_per_unit: float
    ) -> ViewBuffers:
        """Cast one ray per pixel of a view."""
        w, h = resolution
        dev = self.device
        depth_plane = wp.empty((h, w), dtype=wp.float32, device=dev)
        depth_camera = wp.empty((h, w), dtype=wp.float32, device=dev)
        segment = wp.empty((h, w), dtype=wp.int32, device=dev)
        normals = wp.empty((h, w), dtype=wp.vec4, device=dev)
        rgba = wp.empty((h, w, 4), dtype=wp.uint8, device=dev)
        p = pose.projection
        # Row-vector camera-to-world rotation -> the column-vector matrix warp multiplies by.
        rotation = wp.mat33(*pose.cam_to_world[:3, :3].T.astype(np.float32).ravel())
        has_mesh = self._mesh is not None
        inputs = [
            self._mesh.id if has_mesh else wp.uint64(0),
            int(has_mesh),
            wp.vec3(*pose.position.astype(np.float32)),
            rotation,
            wp.vec2(1.0 / p[0, 0], 1.0 / p[1, 1]),
            wp.vec2(p[2, 0], p[2, 1]),
            float(pose.near_far[0]),
            float(pose.near_far[1]),
            float(meters_per_unit),
            self._tri_segment if has_mesh else self._empty_int,
            self._normals if has_mesh else self._empty,
            self._colors if has_mesh else self._empty,
            self.light,
            wp.vec3(*SKY_LINEAR),
        ]
        outputs = [depth_plane, depth_camera, segment, normals, rgba]
        bands = row_bands(h, 1 if wp.get_device(dev).is_cuda else cpu_cores() * BANDS_PER_CORE)

        def cast_band(i: int) -> None:
            first, stop = bands[i]
            band = (stop - first, w)
            wp.launch(_cast, dim=band, inputs=[*inputs, first], outputs=outputs, device=dev)

        for_each_frame(cast_band, len(bands))
        return ViewBuffers(
            depth_plane.numpy(),
            depth_camera.numpy(),
            segment.numpy(),
            normals.numpy(),
            rgba.numpy(),
        )


def row_bands(height: int, count: int) -> list[tuple[int, int]]:
    """``count`` (or fewer) contiguous (first, stop) row ranges covering [0, height)."""
    edges = np.linspace(0, height, min(max(count, 1), height) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
