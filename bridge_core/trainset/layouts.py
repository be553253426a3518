"""Procedural warehouse layouts (USD via pxr) for training pairs: one seed, one stage.

Every object is a top-level prim ``/World/<class>_<NNN>`` carrying a UsdSemantics ``class``
label, so the capture reads its class from the label and Blender (whose USD importer drops
the semantics) from the object name. Geometry is simple gprims scaled by xforms; colours are
``displayColor`` (linear RGB), which the capture shades with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pxr import Gf, Usd, UsdGeom

from bridge_core.trainset.authoring import box, display_color, label, look_at, new_stage

CAMERA = "/World/Camera"
CLASSES: tuple[str, ...] = ("floor", "wall", "shelf", "pallet", "box", "forklift", "person")
FPS = 24.0
# A 36 mm square film at 26 mm focal length: horizontal FOV 2*atan(18/26) = 69 degrees.
FILM_MM = 36.0
FOCAL_MM = 26.0
ROOM = (24.0, 18.0, 6.0)  # width (x), depth (y), wall height (z), metres

CONCRETE = (0.28, 0.28, 0.26)  # linear RGB
PLASTER = (0.62, 0.60, 0.55)
CARDBOARD = (0.48, 0.30, 0.14)
WOOD = (0.42, 0.29, 0.15)
STEEL_BLUE = (0.04, 0.10, 0.32)
BEAM_ORANGE = (0.80, 0.20, 0.02)
FORKLIFT_YELLOW = (0.85, 0.50, 0.02)
DARK = (0.03, 0.03, 0.035)
SHIRTS = ((0.70, 0.25, 0.02), (0.05, 0.20, 0.45), (0.10, 0.35, 0.08), (0.6, 0.6, 0.05))
SKIN = (0.55, 0.33, 0.22)


def _object(stage: Usd.Stage, cls: str, index: int, at, yaw: float = 0.0) -> str:
    """A labelled top-level Xform ``/World/<cls>_<NNN>`` placed at ``at`` and turned by
    ``yaw`` degrees about Z; returns its path for the parts below it."""
    path = f"/World/{cls}_{index:03d}"
    xform = UsdGeom.Xform.Define(stage, path)
    label(xform.GetPrim(), cls)
    xf = UsdGeom.XformCommonAPI(xform)
    xf.SetTranslate(Gf.Vec3d(*(float(v) for v in at)))
    xf.SetRotate(Gf.Vec3f(0.0, 0.0, float(yaw)))
    return path


def _jitter(rng: np.random.Generator, color, amount: float = 0.15) -> tuple[float, ...]:
    return tuple(
        float(c) for c in np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1)
    )


def _floor_and_walls(stage: Usd.Stage) -> None:
    w, d, h = ROOM
    floor = UsdGeom.Mesh.Define(stage, "/World/floor_000")
    m = 4.0  # the floor runs under the walls so no gap shows at their foot
    floor.CreatePointsAttr([(-m, -m, 0), (w + m, -m, 0), (w + m, d + m, 0), (-m, d + m, 0)])
    floor.CreateFaceVertexCountsAttr([4])
    floor.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    floor.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    floor.CreateExtentAttr([(-m, -m, 0), (w + m, d + m, 0)])
    display_color(floor, CONCRETE)
    label(floor.GetPrim(), "floor")
    t = 0.3
    walls = [
        ((w / 2, -t / 2, h / 2), (w + 2 * t, t, h)),
        ((w / 2, d + t / 2, h / 2), (w + 2 * t, t, h)),
        ((-t / 2, d / 2, h / 2), (t, d, h)),
        ((w + t / 2, d / 2, h / 2), (t, d, h)),
    ]
    for i, (center, size) in enumerate(walls):
        wall = box(stage, f"/World/wall_{i:03d}", center, size, PLASTER)
        label(wall.GetPrim(), "wall")


def _shelf(stage: Usd.Stage, rng: np.random.Generator, index: int, at, yaw: float) -> list:
    """A pallet rack along its local X: uprights, beams and decks. Returns the spots boxes
    can stand on, as (local x range, level height) with the rack's world transform."""
    root = _object(stage, "shelf", index, at, yaw)
    bays = int(rng.integers(2, 4))
    bay, depth = float(rng.uniform(1.8, 2.6)), float(rng.uniform(0.8, 1.1))
    rises = rng.uniform(1.0, 1.5, int(rng.integers(2, 4)))
    levels = [0.12, *(np.cumsum(rises) + 0.12)]
    height = levels[-1] + 0.8
    length = bays * bay
    upright = _jitter(rng, STEEL_BLUE, 0.3)
    beam = _jitter(rng, BEAM_ORANGE, 0.1)
    for i in range(bays + 1):
        for j, y in enumerate((-depth / 2, depth / 2)):
            x = -length / 2 + i * bay
            box(stage, f"{root}/upright_{i}{j}", (x, y, height / 2), (0.08, 0.08, height), upright)
    for k, z in enumerate(levels):
        for j, y in enumerate((-depth / 2, depth / 2)):
            box(stage, f"{root}/beam_{k}{j}", (0, y, z - 0.06), (length, 0.06, 0.12), beam)
        box(stage, f"{root}/deck_{k}", (0, 0, z + 0.01), (length, depth, 0.02), (0.2, 0.2, 0.2))
    return [(length, depth, z + 0.02) for z in levels]


def _pallet(stage: Usd.Stage, index: int, at, yaw: float, color) -> float:
    """A 1.2 x 0.8 m pallet (three stringers under five deck boards); returns its top."""
    root = _object(stage, "pallet", index, at, yaw)
    for i, y in enumerate((-0.35, 0.0, 0.35)):
        box(stage, f"{root}/stringer_{i}", (0, y, 0.05), (1.2, 0.1, 0.1), color)
    for i, x in enumerate(np.linspace(-0.53, 0.53, 5)):
        box(stage, f"{root}/board_{i}", (float(x), 0, 0.111), (0.14, 0.8, 0.022), color)
    return 0.122


def _forklift(stage: Usd.Stage, rng: np.random.Generator, at, yaw: float, frames: int) -> None:
    """Body, counterweight, roof on posts, mast and forks, four wheels; drives slowly forward."""
    root = _object(stage, "forklift", 0, at, yaw)
    # Drive along its local -X (forks first) a few cm per frame: the scene is not static.
    heading = np.radians(yaw)
    speed = float(rng.uniform(0.03, 0.08))
    translate = UsdGeom.Xformable(stage.GetPrimAtPath(root)).GetOrderedXformOps()[0]
    for t in range(frames):
        step = -speed * t
        translate.Set(
            Gf.Vec3d(at[0] + step * np.cos(heading), at[1] + step * np.sin(heading), 0), t
        )
    paint = _jitter(rng, FORKLIFT_YELLOW, 0.1)
    box(stage, f"{root}/body", (0, 0, 0.55), (1.6, 1.05, 0.75), paint)
    box(stage, f"{root}/counterweight", (0.8, 0, 0.65), (0.3, 1.0, 0.95), DARK)
    box(stage, f"{root}/roof", (0.05, 0, 2.12), (1.1, 1.02, 0.05), DARK)
    for i, (px, py) in enumerate(((-0.45, -0.48), (-0.45, 0.48), (0.55, -0.48), (0.55, 0.48))):
        box(stage, f"{root}/post_{i}", (px, py, 1.5), (0.06, 0.06, 1.17), DARK)
    for i, py in enumerate((-0.3, 0.3)):
        box(stage, f"{root}/mast_{i}", (-0.88, py, 1.25), (0.1, 0.08, 2.3), DARK)
        box(stage, f"{root}/fork_{i}", (-1.5, py, 0.075), (1.1, 0.12, 0.05), DARK)
    for i, (px, py) in enumerate(((-0.5, -0.55), (-0.5, 0.55), (0.5, -0.55), (0.5, 0.55))):
        wheel = UsdGeom.Cylinder.Define(stage, f"{root}/wheel_{i}")
        wheel.CreateRadiusAttr(0.25)
        wheel.CreateHeightAttr(0.2)
        wheel.CreateAxisAttr(UsdGeom.Tokens.y)
        display_color(wheel, DARK)
        UsdGeom.XformCommonAPI(wheel).SetTranslate(Gf.Vec3d(px, py, 0.25))


def _person(stage: Usd.Stage, rng: np.random.Generator, index: int, at) -> None:
    """Capsule body and sphere head, 1.6-1.9 m tall."""
    root = _object(stage, "person", index, at, float(rng.uniform(0, 360)))
    tall = float(rng.uniform(1.6, 1.9))
    radius = 0.2
    body = UsdGeom.Capsule.Define(stage, f"{root}/body")
    body.CreateRadiusAttr(radius)
    body.CreateHeightAttr(tall - 0.3 - 2 * radius)  # cylinder part; caps add 2 * radius
    display_color(body, SHIRTS[int(rng.integers(len(SHIRTS)))])
    UsdGeom.XformCommonAPI(body).SetTranslate(Gf.Vec3d(0, 0, (tall - 0.3) / 2))
    head = UsdGeom.Sphere.Define(stage, f"{root}/head")
    head.CreateRadiusAttr(0.12)
    display_color(head, _jitter(rng, SKIN, 0.3))
    UsdGeom.XformCommonAPI(head).SetTranslate(Gf.Vec3d(0, 0, tall - 0.14))


def _camera(stage: Usd.Stage, rng: np.random.Generator, frames: int) -> None:
    """A square-film camera near the south wall, dollying sideways and panning a little."""
    cam = UsdGeom.Camera.Define(stage, CAMERA)
    cam.CreateFocalLengthAttr(FOCAL_MM)
    cam.CreateHorizontalApertureAttr(FILM_MM)
    cam.CreateVerticalApertureAttr(FILM_MM)
    cam.CreateClippingRangeAttr(Gf.Vec2f(0.05, 200.0))
    w = ROOM[0]
    eye = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.8, 1.6), rng.uniform(1.2, 2.8)])
    step = rng.uniform(0.15, 0.35) * rng.choice([-1.0, 1.0])  # metres per frame along x
    yaw = rng.uniform(-25, 25)  # degrees from +Y
    pan = rng.uniform(-1.5, 1.5)  # degrees per frame
    pitch = rng.uniform(-14, -4)
    op = cam.AddTransformOp()
    for t in range(frames):
        a, p = np.radians(yaw + pan * t), np.radians(pitch)
        direction = np.array([np.sin(a) * np.cos(p), np.cos(a) * np.cos(p), np.sin(p)])
        pos = eye + np.array([step * t, 0.0, 0.0])
        op.Set(look_at(pos, pos + direction), t)


def _free_spot(rng: np.random.Generator, taken: list, radius: float, y_min: float = 4.0):
    """A floor point (x, y) at least ``radius`` clear of every (x, y, r) in ``taken``, or
    None after a few tries; y_min keeps the strip in front of the camera free."""
    w, d, _ = ROOM
    for _ in range(40):
        x, y = rng.uniform(radius + 0.5, w - radius - 0.5), rng.uniform(y_min, d - radius - 0.5)
        if all(np.hypot(x - tx, y - ty) > radius + tr for tx, ty, tr in taken):
            taken.append((x, y, radius))
            return x, y
    return None


def write_layout(path: Path, seed: int, frames: int = 9) -> None:
    """Author a random warehouse at ``path`` (.usda): Z-up metres, time codes 0..frames-1 at
    24 fps, every class of :data:`CLASSES` present and a moving camera at :data:`CAMERA`."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    rng = np.random.default_rng(seed)
    stage = new_stage(Path(path), frames, FPS)
    stage.SetFramesPerSecond(FPS)
    _floor_and_walls(stage)

    w = ROOM[0]
    taken: list = []
    boxes = 0
    box_color = _jitter(rng, CARDBOARD, 0.2)

    def add_box(x: float, y: float, z0: float, yaw: float, max_size: float) -> None:
        nonlocal boxes
        size = rng.uniform(0.3, max_size, 3) * np.array([1.0, 1.0, 0.8])
        cube = box(
            stage,
            f"/World/box_{boxes:03d}",
            (x, y, z0 + size[2] / 2),
            size,
            _jitter(rng, box_color, 0.12),
        )
        UsdGeom.XformCommonAPI(cube).SetRotate(Gf.Vec3f(0, 0, float(yaw)))
        label(cube.GetPrim(), "box")
        boxes += 1

    # Racks stand in rows parallel to the back wall (x), facing the camera.
    rows = sorted(rng.choice([8.0, 11.5, 15.5], size=int(rng.integers(2, 4)), replace=False))
    for i, y in enumerate(rows):
        x = float(rng.uniform(0.35, 0.65) * w)
        spots = _shelf(stage, rng, i, (x, y, 0), 0.0)
        length, depth, _ = spots[0]
        taken.append((x, y, length / 2 + 0.5))
        for _, _, z in spots:
            for bx in np.arange(-length / 2 + 0.5, length / 2 - 0.3, 0.8):
                if rng.random() < 0.6:
                    add_box(
                        x + bx + rng.uniform(-0.1, 0.1), y, z, rng.uniform(-8, 8), min(0.7, depth)
                    )

    for i in range(int(rng.integers(3, 6))):
        spot = _free_spot(rng, taken, 0.9) or (None if i else (0.2 * w, 5.0))
        if spot is None:
            continue
        yaw = float(rng.uniform(0, 180))
        top = _pallet(stage, i, (*spot, 0), yaw, _jitter(rng, WOOD, 0.2))
        for _ in range(int(rng.integers(0, 3))):
            add_box(
                spot[0] + rng.uniform(-0.2, 0.2), spot[1] + rng.uniform(-0.15, 0.15), top, yaw, 0.6
            )

    for _ in range(int(rng.integers(2, 6))):  # loose boxes on the floor
        spot = _free_spot(rng, taken, 0.5)
        if spot is not None:
            add_box(*spot, 0.0, rng.uniform(0, 90), 0.8)

    spot = _free_spot(rng, taken, 1.8, y_min=5.0) or (w / 2, 6.0)
    _forklift(stage, rng, (*spot, 0.0), float(rng.uniform(0, 360)), frames)
    for i in range(int(rng.integers(1, 4))):
        spot = _free_spot(rng, taken, 0.5) or (None if i else (0.8 * w, 5.0))
        if spot is not None:
            _person(stage, rng, i, (*spot, 0.0))
    _camera(stage, rng, frames)
    stage.GetRootLayer().Save()
