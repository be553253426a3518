"""USD cameras as Replicator's camera_params annotator reports them.

Matrices stay in the stage's own world frame and units (as Replicator writes them, with
``metersPerSceneUnit`` beside them); only depth is converted to metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pxr import Sdf, Usd, UsdGeom

from bridge_core.capture.scene import cameras_in
from bridge_core.datasets.basicwriter_out import (
    camera_params_dict,
    projection_matrix,
    view_from_camera_to_world,
)
from bridge_core.errors import InputError


@dataclass(frozen=True)
class CameraPose:
    """One camera at one time code, for one render resolution.

    ``cam_to_world`` and ``view`` are [4,4] row-vector matrices (translation in the last row);
    ``projection`` is Replicator's reversed-Z [4,4]; ``params`` the camera_params json dict.
    """

    cam_to_world: np.ndarray
    view: np.ndarray
    projection: np.ndarray
    near_far: tuple[float, float]
    params: dict[str, Any]

    @property
    def position(self) -> np.ndarray:
        return self.cam_to_world[3, :3]


def find_camera(stage: Usd.Stage, prim_path: str, scene_path: Path) -> UsdGeom.Camera:
    """The UsdGeom.Camera at ``prim_path``, or InputError listing the cameras there are."""
    prim = stage.GetPrimAtPath(prim_path) if Sdf.Path.IsValidPathString(prim_path) else None
    if not prim or not prim.IsA(UsdGeom.Camera):
        found = sorted(cameras_in(stage))
        what = "is not a camera" if prim else "does not exist"
        hint = f"cameras in the scene: {', '.join(found)}" if found else "the scene has no camera"
        raise InputError(f"camera prim {prim_path} {what}; {hint}", scene_path, "--camera")
    camera = UsdGeom.Camera(prim)
    if camera.GetProjectionAttr().Get() == UsdGeom.Tokens.orthographic:
        raise InputError(
            f"camera {prim_path} is orthographic; only perspective cameras are supported",
            scene_path,
            "--camera",
        )
    return camera


def _rigid(matrix: np.ndarray) -> np.ndarray:
    """Drop scale and shear from a row-vector camera-to-world: a camera's view has neither.
    Gram-Schmidt keeps the -Z (viewing) row exact and re-derives up, then right."""
    m = np.array(matrix, np.float64)
    back = m[2, :3] / np.linalg.norm(m[2, :3])
    up = m[1, :3] - (m[1, :3] @ back) * back
    up /= np.linalg.norm(up)
    right = np.cross(up, back)
    out = np.eye(4)
    out[0, :3], out[1, :3], out[2, :3], out[3, :3] = right, up, back, m[3, :3]
    return out


def camera_pose(
    camera: UsdGeom.Camera,
    time_code: float,
    resolution: tuple[int, int],
    meters_per_unit: float,
) -> CameraPose:
    """Pose, projection and camera_params of ``camera`` at ``time_code``."""
    gf = camera.GetCamera(Usd.TimeCode(time_code))
    c2w = _rigid(np.array(gf.transform))
    clip = gf.clippingRange
    near_far = (float(clip.min), float(clip.max))
    aperture = (float(gf.horizontalAperture), float(gf.verticalAperture))
    offset = (float(gf.horizontalApertureOffset), float(gf.verticalApertureOffset))
    projection = projection_matrix(float(gf.focalLength), aperture[0], resolution, near_far, offset)
    view = view_from_camera_to_world(c2w)
    params = camera_params_dict(
        view=view,
        projection=projection,
        resolution=resolution,
        focal_length=float(gf.focalLength),
        aperture=aperture,
        near_far=near_far,
        aperture_offset=offset,
        focus_distance=float(gf.focusDistance),
        f_stop=float(gf.fStop),
        meters_per_scene_unit=meters_per_unit,
    )
    return CameraPose(c2w, view, projection, near_far, params)
