"""Reading a USD stage for capture: renderable triangles, semantic labels, colours, time codes.

The stage is traversed once (:class:`Scene`); each frame then asks for the world-space
triangles at one time code (:meth:`Scene.geometry`). What counts as renderable follows
Hydra/RTX: defined, active prims; gprims (Mesh, Cube, Sphere, Cylinder, Cone, Capsule, Plane)
including those inside instanceable prims and point-instancer prototypes; not invisible at
that time; purpose default or render (guide and proxy are skipped).

Semantics are read as Replicator reads them: the UsdSemantics LabelsAPI
(``semantics:labels:class`` token arrays) and the legacy Semantics schema
(``semantic:<name>:params:semanticType = "class"`` + ``semanticData``), inherited down the
hierarchy. A gprim's class string joins the labels of itself and its ancestors (outermost
first, each once) with commas, as Replicator writes multi-label prims; its instance segment is
its nearest labelled ancestor (or itself), the prim Replicator's instance_segmentation reports.
Geometry with no label anywhere above it is UNLABELLED.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pxr import Ar, Sdf, Tf, Usd, UsdGeom, UsdShade

from bridge_core.capture import tessellate
from bridge_core.capture.tessellate import Shape
from bridge_core.datasets.basicwriter_out import Segment
from bridge_core.errors import InputError

log = logging.getLogger(__name__)

SEMANTIC_TYPE = "class"  # Replicator's segmentation annotators filter on "class" by default
DEFAULT_COLOR = (0.5, 0.5, 0.5)  # linear grey for surfaces with no colour of their own
_LEGACY_TYPE = re.compile(r"^semantic:(?P<name>[^:]+):params:semanticType$")
_GPRIMS = ("Mesh", "Cube", "Sphere", "Cylinder", "Cone", "Capsule", "Plane")
_SKIPPED_PURPOSES = (UsdGeom.Tokens.guide, UsdGeom.Tokens.proxy)
# Inputs that carry a base colour: UsdPreviewSurface, then Isaac's OmniPBR / OmniSurface MDL.
_COLOR_INPUTS = ("diffuseColor", "diffuse_color_constant", "diffuse_reflection_color")
_TEXTURE_INPUTS = ("diffuse_texture",)


def open_stage(path: Path) -> tuple[Usd.Stage, list[str]]:
    """Open a USD file (usda, usdc, usdz), or raise InputError naming it.

    Also returns the warnings USD raised while opening (a sublayer it could not load, a
    cycle), trapped so they are said once by the caller instead of printed by USD.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("USD file not found", path)
    if not path.is_file():
        raise InputError("is not a regular file", path)
    with Tf.DiagnosticTrap() as trap:
        try:
            stage = Usd.Stage.Open(str(path))
        except Tf.ErrorException as exc:
            detail = _usd_error_text(str(exc))
            raise InputError(f"cannot open as a USD stage ({detail})", path) from exc
        finally:
            warnings = [w.commentary for w in trap.GetWarnings()]
            trap.Clear()
    if stage is None:
        raise InputError("cannot open as a USD stage", path)
    return stage, warnings


def _usd_error_text(message: str) -> str:
    """What a Tf.ErrorException says, without its C++ function and source line:
    "Error in 'X' at line N in file F : 'Failed to open layer @a.usda@'" -> the quoted part."""
    last = message.strip().splitlines()[-1].strip() if message.strip() else "unknown error"
    quoted = re.search(r" : '(.*)'$", last)
    return quoted.group(1) if quoted else last


def stage_time_range(stage: Usd.Stage) -> tuple[int, int]:
    """First and last integer time code of the stage's animation, inclusive.

    Uses the authored start/endTimeCode; many exported files animate without authoring them,
    so otherwise the range spans every time sample in the stage ((0, 0) for a static stage).
    """
    if stage.HasAuthoredTimeCodeRange():
        return int(np.floor(stage.GetStartTimeCode())), int(np.ceil(stage.GetEndTimeCode()))
    lo, hi = np.inf, -np.inf
    for prim in stage.TraverseAll():
        for attr in prim.GetAttributes():
            samples = attr.GetTimeSamples()
            if samples:
                lo, hi = min(lo, samples[0]), max(hi, samples[-1])
    if lo > hi:
        return 0, 0
    return int(np.floor(lo)), int(np.ceil(hi))


def up_axis(stage: Usd.Stage) -> np.ndarray:
    """The stage's up direction [3] (Y or Z)."""
    return np.array([0.0, 1.0, 0.0] if UsdGeom.GetStageUpAxis(stage) == "Y" else [0.0, 0.0, 1.0])


# --------------------------------------------------------------------------------------------
# Labels and colours
# --------------------------------------------------------------------------------------------


def own_labels(prim: Usd.Prim) -> list[str]:
    """The ``class`` labels authored on this prim itself (both schemas, LabelsAPI first)."""
    labels: list[str] = []
    if prim.IsPseudoRoot():
        return labels
    attr = prim.GetAttribute(f"semantics:labels:{SEMANTIC_TYPE}")
    if attr and attr.HasAuthoredValue():
        labels += [str(t) for t in attr.Get() or ()]
    for name in prim.GetPropertyNames():
        match = _LEGACY_TYPE.match(name)
        if match and prim.GetAttribute(name).Get() == SEMANTIC_TYPE:
            data = prim.GetAttribute(f"semantic:{match['name']}:params:semanticData").Get()
            if data:
                labels.append(str(data))
    return labels


@dataclass(frozen=True)
class _Inherited:
    """Labels in force at a prim: all labels above it and the nearest labelled prim."""

    labels: tuple[str, ...] = ()
    owner: str | None = None

    def child(self, prim: Usd.Prim) -> _Inherited:
        own = own_labels(prim)
        if not own:
            return self
        merged = self.labels + tuple(x for x in dict.fromkeys(own) if x not in self.labels)
        return _Inherited(merged, str(prim.GetPath()))

    @property
    def label(self) -> str | None:
        return ",".join(self.labels) if self.labels else None


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.asarray(c, np.float64) ** 2.2


class _Materials:
    """Base colour of bound materials, with texture files reduced to their mean colour.

    A plain shaded RGB needs no UVs: a texture's mean colour keeps each surface's overall tint.
    Textures that do not resolve or do not decode are warned about once and ignored.
    """

    def __init__(self) -> None:
        self._by_material: dict[str, np.ndarray | None] = {}
        self._by_texture: dict[str, np.ndarray | None] = {}
        self.missing: list[str] = []  # texture files that did not resolve or decode

    def color(self, prim: Usd.Prim) -> np.ndarray | None:
        material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
        if not material:
            return None
        key = str(material.GetPath())
        if key not in self._by_material:
            self._by_material[key] = self._material_color(material)
        return self._by_material[key]

    def _material_color(self, material: UsdShade.Material) -> np.ndarray | None:
        shader = None
        for context in ("", "mdl"):
            found = material.ComputeSurfaceSource(context)
            if found and found[0]:
                shader = found[0]
                break
        if shader is None:
            return None
        for name in _COLOR_INPUTS + _TEXTURE_INPUTS:
            inp = shader.GetInput(name)
            if not inp:
                continue
            if inp.HasConnectedSource():
                source = inp.GetConnectedSources()[0][0].source
                texture = UsdShade.Shader(source.GetPrim()).GetInput("file")
                if texture and texture.Get() is not None:
                    color = self._texture_color(texture.Get(), material)
                    if color is not None:
                        return color
                continue
            value = inp.Get()
            if isinstance(value, Sdf.AssetPath):
                color = self._texture_color(value, material)
                if color is not None:
                    return color
            elif value is not None:
                return np.asarray(value, np.float64)[:3]
        return None

    def _texture_color(
        self, asset: Sdf.AssetPath, material: UsdShade.Material
    ) -> np.ndarray | None:
        if not asset.path:
            return None
        key = asset.resolvedPath or asset.path
        if key in self._by_texture:
            return self._by_texture[key]
        color = None
        if not asset.resolvedPath:
            self.missing.append(f"{asset.path} (material {material.GetPath()})")
        else:
            resolved = Ar.ResolvedPath(asset.resolvedPath)
            data = Ar.GetResolver().OpenAsset(resolved)
            picture = None
            if data is not None:
                raw = np.frombuffer(bytes(data.GetBuffer()), np.uint8)
                picture = cv2.imdecode(raw, cv2.IMREAD_COLOR)
            if picture is None:
                self.missing.append(f"{asset.resolvedPath} (cannot be decoded)")
            else:
                mean_bgr = picture.reshape(-1, 3).mean(axis=0) / 255.0
                color = _srgb_to_linear(mean_bgr[::-1])
        self._by_texture[key] = color
        return color


def _corner_values(
    primvar: UsdGeom.Primvar,
    time: Usd.TimeCode,
    slots: np.ndarray | None,
    vertex_index: np.ndarray,
    faces: np.ndarray | None,
) -> np.ndarray | None:
    """A 3-vector primvar (colours, normals) per triangle corner [T,3,3], or None.

    ``vertex_index`` [T,3] holds each corner's point index; ``slots`` [T,3] its face-vertex
    slot and ``faces`` [T] each triangle's face (both None for implicit gprims, whose
    shapes carry no faces).
    """
    if not primvar or not primvar.HasAuthoredValue():
        return None
    values = primvar.ComputeFlattened(time)
    if values is None or len(values) == 0:
        return None
    values = np.asarray(values, np.float64).reshape(-1, 3)
    interp = primvar.GetInterpolation()
    t = len(vertex_index)
    if interp == UsdGeom.Tokens.constant or len(values) == 1:
        return np.broadcast_to(values[0], (t, 3, 3)).copy()
    if interp in (UsdGeom.Tokens.vertex, UsdGeom.Tokens.varying) and slots is not None:
        index = vertex_index
    elif interp == UsdGeom.Tokens.faceVarying and slots is not None:
        index = slots
    elif interp == UsdGeom.Tokens.uniform and faces is not None:
        index = np.repeat(faces[:, None], 3, axis=1)
    else:
        return None
    if index.size and index.max() >= len(values):
        return None  # malformed primvar: fewer values than its interpolation needs
    return values[index]


# --------------------------------------------------------------------------------------------
# Renderable sources
# --------------------------------------------------------------------------------------------


@dataclass
class _Source:
    """One gprim to draw: directly, or once per instance of a point instancer."""

    prim: Usd.Prim
    segment: int
    colors: np.ndarray  # [T,3,3] linear RGB per corner (T of the shape at read time)
    shape: Shape
    time_varying: bool  # points / sizes animated: re-tessellate per frame
    instancer: UsdGeom.PointInstancer | None = None
    proto_index: int = -1
    proto_root: Usd.Prim | None = None


@dataclass
class FrameGeometry:
    """World-space triangles of one time code, ready for a BVH.

    points [V,3] float32, triangles [T,3] int32, segments [T] int32 (index into
    :attr:`Scene.segments`), corner_normals [T*3,3] float32 (zero = use the face normal),
    corner_colors [T*3,3] float32 linear RGB.
    """

    points: np.ndarray
    triangles: np.ndarray
    segments: np.ndarray
    corner_normals: np.ndarray
    corner_colors: np.ndarray

    @property
    def num_triangles(self) -> int:
        return len(self.triangles)


@dataclass
class Scene:
    """The renderable content of a stage, read once, posed per time code."""

    stage: Usd.Stage
    path: Path
    sources: list[_Source]
    segments: list[Segment]
    meters_per_unit: float
    up: np.ndarray  # [3]
    time_range: tuple[int, int]

    @property
    def classes(self) -> list[str]:
        """Every semantic class string in the scene, sorted (fixes the semantic palette)."""
        return sorted({s.label for s in self.segments if s.label is not None})

    def geometry(self, time_code: float) -> FrameGeometry:
        """World-space triangles of every visible source at ``time_code``."""
        time = Usd.TimeCode(time_code)
        xforms = UsdGeom.XformCache(time)
        parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]] = []
        for src in self.sources:
            imageable = UsdGeom.Imageable(src.instancer.GetPrim() if src.instancer else src.prim)
            if imageable.ComputeVisibility(time) == UsdGeom.Tokens.invisible:
                continue
            shape = _shape(src.prim, time) if src.time_varying else src.shape
            if shape is None or shape.num_triangles == 0:
                continue
            colors = src.colors
            if len(colors) != shape.num_triangles:  # topology changed over time
                colors = np.broadcast_to(
                    colors.reshape(-1, 3).mean(axis=0), (len(shape.triangles), 3, 3)
                )
            for matrix in _world_matrices(src, xforms, time):
                parts.append((shape, matrix, src.segment, colors))
        return _assemble(parts)


def _world_matrices(
    src: _Source, xforms: UsdGeom.XformCache, time: Usd.TimeCode
) -> list[np.ndarray]:
    """Local-to-world [4,4] row-vector matrices: one, or one per visible instance."""
    if src.instancer is None:
        return [np.array(xforms.GetLocalToWorldTransform(src.prim))]
    # Gprim relative to its prototype root, then the instance transform (which already holds
    # the prototype root's own xform), then the instancer's local-to-world.
    in_proto = np.array(xforms.GetLocalToWorldTransform(src.prim)) @ np.linalg.inv(
        np.array(xforms.GetLocalToWorldTransform(src.proto_root))
    )
    instancer_world = np.array(xforms.GetLocalToWorldTransform(src.instancer.GetPrim()))
    ids = np.asarray(src.instancer.GetProtoIndicesAttr().Get(time) or [], np.int64)
    instances = src.instancer.ComputeInstanceTransformsAtTime(time, time)
    mask = src.instancer.ComputeMaskAtTime(time)
    out = []
    for i, (proto, inst) in enumerate(zip(ids, instances, strict=False)):
        if proto == src.proto_index and (not mask or mask[i]):
            out.append(in_proto @ np.array(inst) @ instancer_world)
    return out


def _assemble(parts: list) -> FrameGeometry:
    if not parts:
        empty3 = np.zeros((0, 3), np.float32)
        return FrameGeometry(
            empty3, np.zeros((0, 3), np.int32), np.zeros(0, np.int32), empty3, empty3
        )
    points, tris, segs, normals, colors = [], [], [], [], []
    offset = 0
    for shape, matrix, segment, color in parts:
        p = shape.points @ matrix[:3, :3] + matrix[3, :3]
        # Normals transform by the inverse transpose (row vectors: n @ inv(M)^T).
        n = shape.corner_normals.reshape(-1, 3).astype(np.float64)
        if n.any():
            n = n @ np.linalg.inv(matrix[:3, :3]).T
            length = np.linalg.norm(n, axis=1, keepdims=True)
            n = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
        points.append(p)
        tris.append(shape.triangles + offset)
        segs.append(np.full(len(shape.triangles), segment, np.int32))
        normals.append(n)
        colors.append(np.asarray(color).reshape(-1, 3))
        offset += len(p)
    return FrameGeometry(
        np.concatenate(points).astype(np.float32),
        np.concatenate(tris).astype(np.int32),
        np.concatenate(segs),
        np.concatenate(normals).astype(np.float32),
        np.concatenate(colors).astype(np.float32),
    )


def _attr(prim: Usd.Prim, name: str, time: Usd.TimeCode, default):
    value = prim.GetAttribute(name).Get(time) if prim.GetAttribute(name) else None
    return default if value is None else value


def _shape(prim: Usd.Prim, time: Usd.TimeCode) -> Shape | None:
    """Local triangles of a gprim at ``time``; None for an empty or malformed mesh."""
    kind = prim.GetTypeName()
    axis = str(_attr(prim, "axis", time, "Z"))
    if kind == "Mesh":
        return _mesh_shape(UsdGeom.Mesh(prim), time)
    if kind == "Cube":
        return tessellate.cube(float(_attr(prim, "size", time, 2.0)))
    if kind == "Sphere":
        return tessellate.sphere(float(_attr(prim, "radius", time, 1.0)))
    if kind == "Cylinder":
        r, h = float(_attr(prim, "radius", time, 1.0)), float(_attr(prim, "height", time, 2.0))
        return tessellate.cylinder(r, h, axis)
    if kind == "Cone":
        r, h = float(_attr(prim, "radius", time, 1.0)), float(_attr(prim, "height", time, 2.0))
        return tessellate.cone(r, h, axis)
    if kind == "Capsule":
        r, h = float(_attr(prim, "radius", time, 0.5)), float(_attr(prim, "height", time, 1.0))
        return tessellate.capsule(r, h, axis)
    if kind == "Plane":
        w, ln = float(_attr(prim, "width", time, 2.0)), float(_attr(prim, "length", time, 2.0))
        return tessellate.plane(w, ln, axis)
    return None


def _mesh_topology(mesh: UsdGeom.Mesh, time: Usd.TimeCode):
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(time) or [], np.int64)
    indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(time) or [], np.int64)
    holes = np.asarray(mesh.GetHoleIndicesAttr().Get(time) or [], np.int64)
    return counts, indices, holes


def _mesh_shape(mesh: UsdGeom.Mesh, time: Usd.TimeCode) -> Shape | None:
    points = np.asarray(mesh.GetPointsAttr().Get(time) or [], np.float64).reshape(-1, 3)
    counts, indices, holes = _mesh_topology(mesh, time)
    if len(points) == 0 or len(counts) == 0 or counts.sum() != len(indices):
        return None
    if indices.min() < 0 or indices.max() >= len(points):
        log.warning("mesh %s indexes points it does not have; skipped", mesh.GetPath())
        return None
    slots, faces = tessellate.triangulate_polygons(counts, indices, holes)
    vertex_index = indices[slots]
    normals = _corner_values(
        UsdGeom.PrimvarsAPI(mesh).GetPrimvar("normals") or _normals_primvar(mesh),
        time,
        slots,
        vertex_index,
        faces,
    )
    if normals is None:
        normals = np.zeros((len(slots), 3, 3))
    return Shape(points, vertex_index.astype(np.int32), normals.astype(np.float32))


def _normals_primvar(mesh: UsdGeom.Mesh) -> UsdGeom.Primvar:
    """The plain ``normals`` attribute viewed as a primvar (same interpolation rules)."""
    return UsdGeom.Primvar(mesh.GetNormalsAttr())


def _mesh_slots(prim: Usd.Prim, time: Usd.TimeCode) -> tuple[np.ndarray | None, np.ndarray | None]:
    if prim.GetTypeName() != "Mesh":
        return None, None
    counts, indices, holes = _mesh_topology(UsdGeom.Mesh(prim), time)
    return tessellate.triangulate_polygons(counts, indices, holes)


def _is_time_varying(prim: Usd.Prim) -> bool:
    """Do the prim's shape attributes (points, topology, sizes) change over time?"""
    return any(
        a.ValueMightBeTimeVarying()
        for a in prim.GetAttributes()
        if not a.GetName().startswith(("xformOp", "primvars:", "visibility", "semantic"))
    )


# --------------------------------------------------------------------------------------------
# Traversal
# --------------------------------------------------------------------------------------------


class _Reader:
    """One pass over the stage collecting sources and the segment table."""

    def __init__(self, stage: Usd.Stage) -> None:
        self.stage = stage
        self.time = Usd.TimeCode(stage_time_range(stage)[0])
        self.sources: list[_Source] = []
        self.segments: list[Segment] = []
        self._segment_index: dict[tuple[str, str | None], int] = {}
        self.materials = _Materials()
        self._skipped_types: set[str] = set()

    def segment(self, state: _Inherited) -> int:
        key = (state.owner or "", state.label)
        if key not in self._segment_index:
            self._segment_index[key] = len(self.segments)
            self.segments.append(Segment(*key))
        return self._segment_index[key]

    def walk(
        self,
        root: Usd.Prim,
        state: _Inherited,
        instancer: UsdGeom.PointInstancer | None = None,
        proto_index: int = -1,
    ) -> None:
        """Visit ``root`` and everything below it, inheriting labels from ``state``."""
        states = {root.GetPath().GetParentPath(): state}
        prims = iter(Usd.PrimRange(root, Usd.TraverseInstanceProxies()))
        for prim in prims:
            inherited = states.get(prim.GetPath().GetParentPath(), state)
            current = inherited.child(prim)
            states[prim.GetPath()] = current
            imageable = UsdGeom.Imageable(prim)
            if imageable and imageable.GetPurposeAttr().Get() in _SKIPPED_PURPOSES:
                prims.PruneChildren()
                continue
            if prim.IsA(UsdGeom.PointInstancer) and prim != root:
                self._instancer(UsdGeom.PointInstancer(prim), current)
                prims.PruneChildren()
                continue
            kind = prim.GetTypeName()
            if kind in _GPRIMS:
                self._add(prim, current, instancer, proto_index, root)
            elif prim.IsA(UsdGeom.Gprim) and kind not in self._skipped_types:
                self._skipped_types.add(kind)
                log.warning("%s prims (first: %s) are not rendered", kind, prim.GetPath())

    def _instancer(self, instancer: UsdGeom.PointInstancer, state: _Inherited) -> None:
        for index, target in enumerate(instancer.GetPrototypesRel().GetForwardedTargets()):
            proto = self.stage.GetPrimAtPath(target)
            if proto:
                self.walk(proto, state, instancer, index)

    def _add(
        self,
        prim: Usd.Prim,
        state: _Inherited,
        instancer: UsdGeom.PointInstancer | None,
        proto_index: int,
        proto_root: Usd.Prim,
    ) -> None:
        shape = _shape(prim, self.time)
        if shape is None:
            return
        self.sources.append(
            _Source(
                prim=prim,
                segment=self.segment(state),
                colors=self._colors(prim, shape),
                shape=shape,
                time_varying=_is_time_varying(prim),
                instancer=instancer,
                proto_index=proto_index,
                proto_root=proto_root if instancer is not None else None,
            )
        )

    def _colors(self, prim: Usd.Prim, shape: Shape) -> np.ndarray:
        """[T,3,3] linear RGB: displayColor, else the bound material's base colour, else grey."""
        t = shape.num_triangles
        display = UsdGeom.Gprim(prim).GetDisplayColorPrimvar()
        # Implicit gprims have no faces of their own: only a constant colour maps onto them.
        slots, faces = _mesh_slots(prim, self.time)
        colors = _corner_values(display, self.time, slots, shape.triangles, faces)
        if colors is not None and len(colors) == t:
            return colors
        base = self.materials.color(prim)
        return np.broadcast_to(DEFAULT_COLOR if base is None else base, (t, 3, 3)).copy()


def read_scene(path: Path) -> Scene:
    """Open ``path`` and collect everything a capture draws; InputError if nothing is drawable."""
    stage, usd_warnings = open_stage(path)
    reader = _Reader(stage)
    reader.walk(stage.GetPseudoRoot(), _Inherited())
    said = f" (USD said {len(usd_warnings)}: {usd_warnings[0]})" if usd_warnings else ""
    if not reader.sources:
        raise InputError(f"the stage has no renderable geometry (meshes or gprims){said}", path)
    if usd_warnings:
        log.warning("%s: opened with warnings%s", path, said)
    missing = reader.materials.missing
    if missing:
        # One line, not one per file: exported scenes often ship without their textures.
        log.warning(
            "%s: %d texture(s) missing, using plain colours instead (first: %s)",
            path,
            len(missing),
            missing[0],
        )
    return Scene(
        stage=stage,
        path=Path(path),
        sources=reader.sources,
        segments=reader.segments,
        meters_per_unit=float(UsdGeom.GetStageMetersPerUnit(stage)),
        up=up_axis(stage),
        time_range=stage_time_range(stage),
    )


def cameras_in(stage: Usd.Stage) -> Iterator[str]:
    """Paths of every camera prim on the stage."""
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Camera):
            yield str(prim.GetPath())
