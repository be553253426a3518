"""Geometry of captured views against analytic answers and against the written camera_params."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from pxr import Gf, Usd, UsdGeom, UsdSemantics

from bridge_core.capture.capture import capture_scene
from tests.capture.conftest import WAREHOUSE
from tests.replicator_geometry import camera_matrices, pixel_rays, project, read_rgba


def _camera(folder: Path, n: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int], dict]:
    cp = json.loads(next(folder.rglob(f"camera_params_{n}.json")).read_text())
    return (*camera_matrices(cp), cp)


def _plane_stage(path: Path, up: str, meters_per_unit: float) -> Path:
    """A 40 m square floor through the origin, a labelled unit cube on it, a camera looking
    down at it obliquely from 6 m away; authored in scene units of ``meters_per_unit``."""
    s = 1.0 / meters_per_unit  # one metre in scene units
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, up)
    UsdGeom.SetStageMetersPerUnit(stage, meters_per_unit)

    def vec(x: float, horizontal: float, height: float) -> Gf.Vec3d:
        return Gf.Vec3d(x, height, -horizontal) if up == "Y" else Gf.Vec3d(x, horizontal, height)

    floor = UsdGeom.Mesh.Define(stage, "/World/Floor")
    corners = [vec(x * 20 * s, y * 20 * s, 0.0) for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    floor.CreatePointsAttr([Gf.Vec3f(*c) for c in corners])
    floor.CreateFaceVertexCountsAttr([4])
    floor.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    UsdSemantics.LabelsAPI.Apply(floor.GetPrim(), "class").CreateLabelsAttr().Set(["floor"])
    cube = UsdGeom.Cube.Define(stage, "/World/Cube")
    cube.CreateSizeAttr(1.0 * s)
    UsdGeom.XformCommonAPI(cube).SetTranslate(vec(1.0 * s, 0.5 * s, 0.5 * s))
    UsdSemantics.LabelsAPI.Apply(cube.GetPrim(), "class").CreateLabelsAttr().Set(["cube"])
    cam = UsdGeom.Camera.Define(stage, "/World/Camera")
    cam.CreateFocalLengthAttr(24.0)
    cam.CreateHorizontalApertureAttr(20.955)
    cam.CreateClippingRangeAttr(Gf.Vec2f(0.05 * s, 1000 * s))
    # Looking down 35 degrees from 6 m along the horizontal axis.
    pitch = np.radians(35)
    eye = vec(0.0, 6 * s * np.cos(pitch) * 1.2, 6 * s * np.sin(pitch))
    # USD cameras look along their -Z: pitch about X, then turn to face the origin.
    rotate = Gf.Vec3f(-35.0, 180.0, 0.0) if up == "Y" else Gf.Vec3f(90.0 - 35.0, 0.0, 180.0)
    xf = UsdGeom.XformCommonAPI(cam)
    xf.SetTranslate(eye)
    xf.SetRotate(rotate)
    stage.GetRootLayer().Save()
    return path


@pytest.mark.parametrize(("up", "meters_per_unit"), [("Z", 1.0), ("Y", 0.01)])
def test_plane_depth_matches_analytic(tmp_path: Path, up: str, meters_per_unit: float) -> None:
    scene = _plane_stage(tmp_path / "plane.usda", up, meters_per_unit)
    out = tmp_path / "out"
    capture_scene(scene, ["/World/Camera"], out, resolution=(160, 120))
    view, proj, res, cp = _camera(out, "0000")
    assert cp["metersPerSceneUnit"] == meters_per_unit
    eye, dirs = pixel_rays(view, proj, res)
    axis = 1 if up == "Y" else 2
    t = -eye[axis] / dirs[..., axis]  # scene units to the plane height 0
    labels = json.loads((out / "semantic_segmentation_labels_0000.json").read_text())
    floor = next(ast.literal_eval(k) for k, v in labels.items() if v["class"] == "floor")
    mask = (read_rgba(out / "semantic_segmentation_0000.png") == floor).all(axis=-1)
    assert mask.mean() > 0.5
    plane = np.load(out / "distance_to_image_plane_0000.npy")
    radial = np.load(out / "distance_to_camera_0000.npy")
    expected = t * meters_per_unit  # depth is written in metres whatever the scene unit
    np.testing.assert_allclose(plane[mask], expected[mask], rtol=1e-3)
    ray_len = np.linalg.norm(dirs, axis=-1)
    np.testing.assert_allclose(radial[mask], (expected * ray_len)[mask], rtol=1e-3)
    normals = np.load(out / "normals_0000.npy")
    np.testing.assert_allclose(normals[mask][:, axis], 1.0, atol=1e-5)
    # The cube's centre, projected with the written matrices, lands on the cube.
    cube = np.zeros(3)
    cube[0], cube[axis] = 1.0 / meters_per_unit, 0.5 / meters_per_unit
    cube[3 - axis] = (-0.5 if up == "Y" else 0.5) / meters_per_unit
    u, v = project(cube[None], view, proj, res)[0]
    cube_color = next(ast.literal_eval(k) for k, v in labels.items() if v["class"] == "cube")
    sem = read_rgba(out / "semantic_segmentation_0000.png")
    assert tuple(sem[int(v), int(u)]) == cube_color


def _neighbourhood(picture: np.ndarray, u: float, v: float) -> set[tuple[int, ...]]:
    """Colours within 1 pixel of (u, v)."""
    x, y = int(u), int(v)
    patch = picture[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
    return {tuple(int(c) for c in px) for px in patch.reshape(-1, 4)}


@pytest.mark.parametrize(
    ("prim", "reported"),
    [
        ("/World/Warehouse/Forklift_01/Body", "/World/Warehouse/Forklift_01"),
        ("/World/Warehouse/Worker_01/Head", "/World/Warehouse/Worker_01"),
        ("/World/Warehouse/Boxes/Box_10", "/World/Warehouse/Boxes/Box_10"),
    ],
)
def test_known_points_project_onto_their_segment(
    warehouse_multi: Path, prim: str, reported: str
) -> None:
    """World centres of solid prims at each captured time code, projected with the written
    camera_params, fall within 1 pixel of that prim's instance colour."""
    stage = Usd.Stage.Open(str(WAREHOUSE))
    checked = 0
    for rp in ("Replicator", "Replicator_01"):
        folder = warehouse_multi / rp
        for time_code in range(3):
            n = f"{time_code:04d}"
            centre = np.array(
                UsdGeom.XformCache(time_code)
                .GetLocalToWorldTransform(stage.GetPrimAtPath(prim))
                .ExtractTranslation()
            )
            view, proj, res, _ = _camera(folder, n)
            u, v = project(centre[None], view, proj, res)[0]
            if not (0 <= u < res[0] and 0 <= v < res[1]):
                continue
            ins = folder / "instance_segmentation"
            mapping = json.loads((ins / f"instance_segmentation_mapping_{n}.json").read_text())
            colour = next(ast.literal_eval(k) for k, p in mapping.items() if p == reported)
            picture = read_rgba(ins / f"instance_segmentation_{n}.png")
            assert colour in _neighbourhood(picture, u, v), (rp, n)
            checked += 1
    assert checked >= 3


def test_distance_to_camera_not_below_image_plane(warehouse_multi: Path) -> None:
    for plane_file in sorted(warehouse_multi.rglob("distance_to_image_plane_*.npy")):
        plane = np.load(plane_file)
        radial = np.load(str(plane_file).replace("image_plane", "camera"))
        normals = np.load(str(plane_file).replace("distance_to_image_plane", "normals"))
        hit = np.isfinite(plane)
        assert (np.isinf(plane) == np.isinf(radial)).all() and not np.isnan(plane).any()
        assert 0.5 < hit.mean() < 1.0  # some sky in every view, like the real sample
        assert (radial[hit] >= plane[hit]).all()
        np.testing.assert_allclose(np.linalg.norm(normals[hit][:, :3], axis=-1), 1, rtol=1e-4)
        assert (normals[hit][:, 3] == 1).all() and (normals[~hit] == 0).all()


def test_moving_object_moves(warehouse_multi: Path) -> None:
    """The forklift drives between time codes: its instance mask changes, the walls do not."""
    ins = warehouse_multi / "Replicator" / "instance_segmentation"

    def mask(n: str, path: str) -> np.ndarray:
        mapping = json.loads((ins / f"instance_segmentation_mapping_{n}.json").read_text())
        colour = next(ast.literal_eval(k) for k, p in mapping.items() if p == path)
        return (read_rgba(ins / f"instance_segmentation_{n}.png") == colour).all(axis=-1)

    forklift, walls = "/World/Warehouse/Forklift_01", "/World/Warehouse/Walls"
    assert mask("0000", forklift).sum() > 50
    assert (mask("0000", forklift) != mask("0002", forklift)).sum() > 10
    assert (mask("0000", walls) != mask("0002", walls)).mean() < 0.05  # only the camera moved
