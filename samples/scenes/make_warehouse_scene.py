"""Author samples/scenes/warehouse.usda: a small labelled warehouse with animation, via pxr.

The scene exercises what capture reads, the way Isaac Sim scenes use it:

- Z-up, metres (metersPerUnit 1), 48 time codes at 24 fps.
- Floor (Mesh with a quad and an n-gon), walls and shelf parts (Cube gprims scaled by xforms),
  a concrete column (Cylinder, deliberately unlabelled -> UNLABELLED), boxes (Cubes),
  pallets (instanceable prims referencing one prototype), traffic cones (a PointInstancer of
  Cone + Sphere prototypes), a forklift driving down the aisle (animated translate, Capsule
  and Cube parts) and a walking worker (Capsule body, Sphere head).
- Semantic labels in both schemas: UsdSemantics LabelsAPI (``semantics:labels:class``) on most
  prims, the legacy ``semantic:Semantics:params:*`` attributes on the forklift and the worker,
  and labels on parents that their child gprims inherit.
- A guide prim and an invisible prim that must not show up.
- Two cameras: /World/Cameras/Overview moves along a dolly path; /World/Cameras/Aisle is at
  eye height and pans with the forklift.

Usage::

    python samples/scenes/make_warehouse_scene.py [--out samples/scenes/warehouse.usda]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom

from bridge_core.trainset.authoring import box, label, look_at, new_stage

DEFAULT_OUT = Path(__file__).resolve().parent / "warehouse.usda"
FRAMES = 48  # time codes 0..47
FPS = 24.0

CARDBOARD = [(0.50, 0.30, 0.14), (0.44, 0.26, 0.12), (0.55, 0.36, 0.18)]  # linear RGB
WOOD = (0.42, 0.28, 0.14)
STEEL_BLUE = (0.03, 0.08, 0.30)
BEAM_ORANGE = (0.80, 0.17, 0.01)
CONCRETE = (0.30, 0.30, 0.28)
WALL = (0.68, 0.66, 0.60)
YELLOW = (0.90, 0.45, 0.01)
DARK = (0.03, 0.03, 0.035)
ORANGE = (0.95, 0.25, 0.02)


def legacy_label(prim: Usd.Prim, cls: str) -> None:
    """The pre-4.5 Semantics schema, as omni.isaac.core's add_update_semantics authored it."""
    prim.AddAppliedSchema("SemanticsAPI:Semantics")
    prim.CreateAttribute("semantic:Semantics:params:semanticType", Sdf.ValueTypeNames.String).Set(
        "class"
    )
    prim.CreateAttribute("semantic:Semantics:params:semanticData", Sdf.ValueTypeNames.String).Set(
        cls
    )


def on_floor(x: float, y: float, z0: float, dx: float, dy: float, dz: float):
    """(centre, size) of a box standing at height z0."""
    return (x, y, z0 + dz / 2), (dx, dy, dz)


def build_floor(stage: Usd.Stage) -> None:
    floor = UsdGeom.Mesh.Define(stage, "/World/Warehouse/Floor")
    # A quad and a pentagon (n-gon) tiling a 14 x 12 m floor: exercises fan triangulation.
    floor.CreatePointsAttr(
        [(0, 0, 0), (14, 0, 0), (14, 6, 0), (0, 6, 0), (14, 12, 0), (7, 12, 0), (0, 12, 0)]
    )
    floor.CreateFaceVertexCountsAttr([4, 5])
    floor.CreateFaceVertexIndicesAttr([0, 1, 2, 3, 3, 2, 4, 5, 6])
    floor.CreateNormalsAttr([(0, 0, 1)] * 9)
    floor.SetNormalsInterpolation(UsdGeom.Tokens.faceVarying)
    floor.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    floor.CreateDisplayColorAttr([Gf.Vec3f(*CONCRETE)])
    label(floor.GetPrim(), "floor")


def build_walls(stage: Usd.Stage) -> None:
    walls = UsdGeom.Xform.Define(stage, "/World/Warehouse/Walls")
    label(walls.GetPrim(), "wall")  # inherited by both wall cubes
    box(stage, "/World/Warehouse/Walls/Wall_01", *on_floor(-0.1, 6.0, 0, 0.2, 12.0, 4.0), WALL)
    box(stage, "/World/Warehouse/Walls/Wall_02", *on_floor(7.0, -0.1, 0, 14.0, 0.2, 4.0), WALL)


def build_shelf(stage: Usd.Stage) -> list[float]:
    root = "/World/Warehouse/Shelf_01"
    label(UsdGeom.Xform.Define(stage, root).GetPrim(), "shelf")
    levels = [0.15, 1.15, 2.15]
    k = 0
    for x in (1.0, 3.0, 5.0):
        for y in (0.3, 1.2):
            k += 1
            box(stage, f"{root}/Upright_{k:02d}", *on_floor(x, y, 0, 0.08, 0.08, 3.0), STEEL_BLUE)
    for i, z in enumerate(levels):
        for j, y in enumerate((0.3, 1.2)):
            c, s = on_floor(3.0, y, z - 0.1, 4.08, 0.06, 0.1)
            box(stage, f"{root}/Beam_{i}{j}", c, s, BEAM_ORANGE)
        box(stage, f"{root}/Deck_{i}", *on_floor(3.0, 0.75, z, 4.0, 0.9, 0.04), (0.2, 0.2, 0.2))
    return [z + 0.04 for z in levels]


def build_boxes(stage: Usd.Stage, shelf_tops: list[float]) -> None:
    UsdGeom.Scope.Define(stage, "/World/Warehouse/Boxes")
    spots = [
        (1.45, 0.75, shelf_tops[0], 0.6, 0.6, 0.45),
        (2.3, 0.75, shelf_tops[0], 0.5, 0.6, 0.4),
        (3.6, 0.75, shelf_tops[0], 0.7, 0.6, 0.5),
        (1.7, 0.75, shelf_tops[1], 0.7, 0.55, 0.5),
        (3.0, 0.75, shelf_tops[1], 0.55, 0.55, 0.45),
        (4.2, 0.75, shelf_tops[1], 0.6, 0.55, 0.55),
        (2.4, 0.75, shelf_tops[2], 0.6, 0.6, 0.4),
        (3.8, 0.75, shelf_tops[2], 0.8, 0.6, 0.5),
        (8.0, 1.6, 0.14, 0.58, 0.38, 0.4),
        (8.0, 2.0, 0.14, 0.58, 0.38, 0.4),
        (8.05, 1.8, 0.54, 0.5, 0.5, 0.35),
    ]
    for i, (x, y, z0, dx, dy, dz) in enumerate(spots, start=1):
        path = f"/World/Warehouse/Boxes/Box_{i:02d}"
        cube = box(stage, path, *on_floor(x, y, z0, dx, dy, dz), CARDBOARD[i % len(CARDBOARD)])
        label(cube.GetPrim(), "box")  # one instance segment per box


def build_pallets(stage: Usd.Stage) -> None:
    """One pallet prototype (deck boards over three stringers) referenced by instanceable
    prims, the way asset libraries are assembled."""
    proto = "/World/Prototypes/Pallet"
    UsdGeom.Scope.Define(stage, "/World/Prototypes").GetPrim().SetSpecifier(Sdf.SpecifierClass)
    stage.DefinePrim(proto, "Xform")
    for i, off in enumerate((-0.35, 0.0, 0.35)):
        box(stage, f"{proto}/Stringer_{i}", *on_floor(0, off, 0, 1.2, 0.1, 0.1), WOOD)
    for i, off in enumerate(np.linspace(-0.53, 0.53, 5)):
        box(stage, f"{proto}/Board_{i}", *on_floor(float(off), 0, 0.1, 0.14, 0.8, 0.022), WOOD)
    for name, x, y, yaw in (("Pallet_01", 8.0, 1.8, 0.0), ("Pallet_02", 1.4, 4.2, 90.0)):
        prim = stage.DefinePrim(f"/World/Warehouse/{name}", "Xform")
        prim.GetReferences().AddInternalReference(proto)
        prim.SetInstanceable(True)
        label(prim, "pallet")
        xf = UsdGeom.XformCommonAPI(prim)
        xf.SetTranslate(Gf.Vec3d(x, y, 0.0))
        xf.SetRotate(Gf.Vec3f(0.0, 0.0, yaw))


def build_cones(stage: Usd.Stage) -> None:
    """Traffic cones along the aisle as a PointInstancer (two prototypes)."""
    root = "/World/Warehouse/Cones"
    inst = UsdGeom.PointInstancer.Define(stage, root)
    label(inst.GetPrim(), "cone")
    cone = UsdGeom.Cone.Define(stage, f"{root}/Prototypes/Cone")
    cone.CreateRadiusAttr(0.18)
    cone.CreateHeightAttr(0.7)
    cone.CreateDisplayColorAttr([Gf.Vec3f(*ORANGE)])
    UsdGeom.XformCommonAPI(cone).SetTranslate(Gf.Vec3d(0, 0, 0.35))
    ball = UsdGeom.Sphere.Define(stage, f"{root}/Prototypes/Ball")
    ball.CreateRadiusAttr(0.15)
    ball.CreateDisplayColorAttr([Gf.Vec3f(*YELLOW)])
    UsdGeom.XformCommonAPI(ball).SetTranslate(Gf.Vec3d(0, 0, 0.15))
    inst.CreatePrototypesRel().SetTargets([cone.GetPath(), ball.GetPath()])
    inst.CreateProtoIndicesAttr([0, 0, 1, 0])
    inst.CreatePositionsAttr([(6.0, 2.6, 0), (9.0, 2.6, 0), (10.5, 5.0, 0), (12.0, 2.6, 0)])


def build_column(stage: Usd.Stage) -> None:
    column = UsdGeom.Cylinder.Define(stage, "/World/Warehouse/Column_01")  # no label
    column.CreateRadiusAttr(0.25)
    column.CreateHeightAttr(4.0)
    column.CreateDisplayColorAttr([Gf.Vec3f(*CONCRETE)])
    UsdGeom.XformCommonAPI(column).SetTranslate(Gf.Vec3d(10.5, 0.3, 2.0))


def build_forklift(stage: Usd.Stage) -> None:
    root = "/World/Warehouse/Forklift_01"
    forklift = UsdGeom.Xform.Define(stage, root)
    legacy_label(forklift.GetPrim(), "forklift")
    translate = forklift.AddTranslateOp()
    translate.Set(Gf.Vec3d(11.0, 3.6, 0.0), 0)
    translate.Set(Gf.Vec3d(6.5, 3.6, 0.0), FRAMES - 1)
    box(stage, f"{root}/Body", *on_floor(0, 0, 0.18, 1.6, 1.05, 0.75), YELLOW)
    box(stage, f"{root}/Counterweight", *on_floor(0.8, 0, 0.18, 0.3, 1.0, 0.95), DARK)
    box(stage, f"{root}/Roof", *on_floor(0.05, 0, 2.1, 1.1, 1.02, 0.05), DARK)
    for i, (px, py) in enumerate(((-0.45, -0.48), (-0.45, 0.48), (0.55, -0.48), (0.55, 0.48))):
        box(stage, f"{root}/Post_{i}", *on_floor(px, py, 0.93, 0.06, 0.06, 1.17), DARK)
    for i, py in enumerate((-0.3, 0.3)):
        box(stage, f"{root}/Mast_{i}", *on_floor(-0.88, py, 0.1, 0.1, 0.08, 2.3), DARK)
        fork = box(stage, f"{root}/Fork_{i}", *on_floor(-1.5, py, 0.05, 1.1, 0.12, 0.05), DARK)
        label(fork.GetPrim(), "fork")  # nested label: class "forklift,fork"
    for i, (px, py) in enumerate(((-0.5, -0.55), (-0.5, 0.55), (0.5, -0.55), (0.5, 0.55))):
        wheel = UsdGeom.Cylinder.Define(stage, f"{root}/Wheel_{i}")
        wheel.CreateRadiusAttr(0.25)
        wheel.CreateHeightAttr(0.2)
        wheel.CreateAxisAttr(UsdGeom.Tokens.y)
        wheel.CreateDisplayColorAttr([Gf.Vec3f(*DARK)])
        UsdGeom.XformCommonAPI(wheel).SetTranslate(Gf.Vec3d(px, py, 0.25))
    driver = UsdGeom.Capsule.Define(stage, f"{root}/Seat")
    driver.CreateRadiusAttr(0.2)
    driver.CreateHeightAttr(0.2)
    driver.CreateDisplayColorAttr([Gf.Vec3f(*DARK)])
    UsdGeom.XformCommonAPI(driver).SetTranslate(Gf.Vec3d(0.2, 0, 1.2))


def build_worker(stage: Usd.Stage) -> None:
    root = "/World/Warehouse/Worker_01"
    worker = UsdGeom.Xform.Define(stage, root)
    legacy_label(worker.GetPrim(), "person")
    translate = worker.AddTranslateOp()
    translate.Set(Gf.Vec3d(4.2, 6.2, 0.0), 0)
    translate.Set(Gf.Vec3d(4.2, 5.0, 0.0), FRAMES - 1)
    body = UsdGeom.Capsule.Define(stage, f"{root}/Body")
    body.CreateRadiusAttr(0.22)
    body.CreateHeightAttr(1.1)
    body.CreateDisplayColorAttr([Gf.Vec3f(0.9, 0.3, 0.01)])
    UsdGeom.XformCommonAPI(body).SetTranslate(Gf.Vec3d(0, 0, 0.77))
    head = UsdGeom.Sphere.Define(stage, f"{root}/Head")
    head.CreateRadiusAttr(0.12)
    head.CreateDisplayColorAttr([Gf.Vec3f(0.6, 0.35, 0.22)])
    UsdGeom.XformCommonAPI(head).SetTranslate(Gf.Vec3d(0, 0, 1.62))


def build_hidden(stage: Usd.Stage) -> None:
    """Geometry a renderer must skip: a guide (purpose) and an invisible prim."""
    guide = box(stage, "/World/Helpers/Guide", (5.0, 5.0, 1.0), (2.0, 2.0, 2.0), (1, 0, 1))
    guide.CreatePurposeAttr(UsdGeom.Tokens.guide)
    label(guide.GetPrim(), "guide")
    hidden = box(stage, "/World/Helpers/Hidden", (9.0, 7.0, 1.0), (2.0, 2.0, 2.0), (0, 1, 1))
    hidden.CreateVisibilityAttr(UsdGeom.Tokens.invisible)
    label(hidden.GetPrim(), "hidden")


def build_cameras(stage: Usd.Stage) -> None:
    for name, focal in (("Overview", 18.0), ("Aisle", 24.0)):
        cam = UsdGeom.Camera.Define(stage, f"/World/Cameras/{name}")
        cam.CreateFocalLengthAttr(focal)
        cam.CreateHorizontalApertureAttr(20.955)
        cam.CreateVerticalApertureAttr(15.2908)  # Isaac's default; fitted horizontally
        cam.CreateClippingRangeAttr(Gf.Vec2f(0.1, 1000.0))
        op = cam.AddTransformOp()
        for t in range(FRAMES):
            s = t / (FRAMES - 1)
            if name == "Overview":  # high dolly from the far corner
                eye = (13.0 - 1.5 * s, 11.0 - 0.5 * s, 4.2 - 0.4 * s)
                target = (4.5 + 1.0 * s, 2.0 + 0.4 * s, 0.6)
            else:  # eye height, follows the forklift down the aisle
                eye = (2.0 + 0.6 * s, 10.5, 1.65)
                target = (11.0 - 4.5 * s, 3.6, 0.9)
            op.Set(look_at(eye, target), t)


def make_warehouse_scene(out: Path = DEFAULT_OUT) -> Path:
    """Write the scene to ``out`` (.usda) and return the path."""
    out = Path(out)
    stage = new_stage(out, FRAMES, FPS)
    stage.GetRootLayer().documentation = "Sample warehouse for cosmos-bridge capture (generated)."
    UsdGeom.Xform.Define(stage, "/World/Warehouse")
    build_floor(stage)
    build_walls(stage)
    build_boxes(stage, build_shelf(stage))
    build_pallets(stage)
    build_cones(stage)
    build_column(stage)
    build_forklift(stage)
    build_worker(stage)
    build_hidden(stage)
    build_cameras(stage)
    stage.GetRootLayer().Save()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = make_warehouse_scene(ap.parse_args(argv).out)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
