"""USD (pxr) authoring helpers shared by the procedural training layouts
(:mod:`bridge_core.trainset.layouts`) and the sample scene (samples/scenes/make_warehouse_scene.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pxr import Gf, Usd, UsdGeom, UsdSemantics, Vt


def new_stage(path: Path, frames: int, fps: float) -> Usd.Stage:
    """Create a stage at ``path`` (making its folders): Z-up, metres, time codes
    0..frames-1 at ``fps`` per second, and an Xform ``/World`` as the default prim."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(frames - 1)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, "/World").GetPrim())
    return stage


def label(prim: Usd.Prim, *classes: str) -> None:
    """UsdSemantics LabelsAPI, instance "class" (what Isaac Sim 4.5+ writes)."""
    UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr().Set(Vt.TokenArray(classes))


def display_color(gprim: UsdGeom.Gprim, color: Sequence[float]) -> None:
    """A constant ``displayColor`` (linear RGB)."""
    gprim.CreateDisplayColorAttr([Gf.Vec3f(*(float(c) for c in color))])


def box(
    stage: Usd.Stage,
    path: str,
    center: Sequence[float],
    size: Sequence[float],
    color: Sequence[float],
) -> UsdGeom.Cube:
    """A Cube of edge 1 scaled to ``size`` (x, y, z) metres at ``center`` (parent space)."""
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(1.0)
    display_color(cube, color)
    xf = UsdGeom.XformCommonAPI(cube)
    xf.SetTranslate(Gf.Vec3d(*(float(v) for v in center)))
    xf.SetScale(Gf.Vec3f(*(float(v) for v in size)))
    return cube


def look_at(eye: Sequence[float], target: Sequence[float]) -> Gf.Matrix4d:
    """Camera-to-world (row vectors) looking from ``eye`` at ``target``, +Z up: USD cameras
    look along their -Z with +Y up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3], m[3, :3] = right, up, back, eye
    return Gf.Matrix4d(m.tolist())
