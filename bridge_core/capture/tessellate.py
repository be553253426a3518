"""Triangles for USD geometry: polygon meshes (n-gons fanned) and the implicit gprims.

Every function returns a :class:`Shape` in the prim's local space. Implicit surfaces are
tessellated finely enough that depth error stays far below a pixel at the sizes a capture
uses (48 segments around: the chord error is 0.2% of the radius).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEGMENTS = 48  # around the axis of spheres, cylinders, cones and capsules
RINGS = 24  # pole to pole of a sphere (half of it per capsule cap)


@dataclass
class Shape:
    """A local-space triangle soup: points [V,3] float64, triangles [T,3] int32 (into points),
    corner normals [T,3,3] float32 (all zero where the surface is flat-shaded)."""

    points: np.ndarray
    triangles: np.ndarray
    corner_normals: np.ndarray

    @property
    def num_triangles(self) -> int:
        return len(self.triangles)


def _flat(points: np.ndarray, triangles: np.ndarray) -> Shape:
    tris = np.asarray(triangles, np.int32).reshape(-1, 3)
    return Shape(np.asarray(points, np.float64), tris, np.zeros((len(tris), 3, 3), np.float32))


def _smooth(points: np.ndarray, triangles: np.ndarray, vertex_normals: np.ndarray) -> Shape:
    tris = np.asarray(triangles, np.int32).reshape(-1, 3)
    return Shape(np.asarray(points, np.float64), tris, vertex_normals[tris].astype(np.float32))


def _to_axis(shape: Shape, axis: str) -> Shape:
    """Shapes are built along +Z; a cyclic permutation of xyz (a proper rotation, so windings
    survive) points them along X or Y."""
    order = {"X": [2, 0, 1], "Y": [1, 2, 0], "Z": [0, 1, 2]}[axis]
    return Shape(shape.points[:, order], shape.triangles, shape.corner_normals[..., order])


def triangulate_polygons(
    counts: np.ndarray, indices: np.ndarray, holes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons (exact for convex faces, which USD meshes nearly always are).

    counts [F] vertices per face, indices [sum(counts)] point indices; faces in ``holes`` and
    faces with fewer than 3 vertices are dropped. Returns the face-vertex slot of each corner
    [T,3] (index into ``indices``, so face-varying primvars can follow) and each triangle's
    face [T].
    """
    counts = np.asarray(counts, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    keep = counts >= 3
    if holes is not None and len(holes):
        keep[np.asarray(holes, np.int64)[np.asarray(holes) < len(counts)]] = False
    per_face = np.where(keep, counts - 2, 0)
    faces = np.repeat(np.arange(len(counts)), per_face)
    # k-th triangle of a face: (start, start + k + 1, start + k + 2).
    first = np.repeat(np.cumsum(per_face) - per_face, per_face)
    k = np.arange(len(faces)) - first
    base = starts[faces]
    slots = np.stack([base, base + k + 1, base + k + 2], axis=1)
    return slots, faces


def cube(size: float) -> Shape:
    """Axis-aligned cube of edge ``size`` centred on the origin, flat faces."""
    h = size / 2
    corners = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)])
    # Outward-facing (counter-clockwise) quads, as corner indices (bit 2 = x, 1 = y, 0 = z).
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    tris = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    return _flat(corners, tris)


def _lathe(strips: list[list[tuple[float, float, float, float]]], segments: int) -> Shape:
    """Surface of revolution about +Z. Each strip is a meridian profile of (r, z, n_r, n_z)
    points; consecutive points of a strip are joined by a band of quads. Separate strips keep
    normals sharp where they meet (a cylinder's side and caps)."""
    angles = np.linspace(0.0, 2 * math.pi, segments + 1)
    cos, sin = np.cos(angles), np.sin(angles)
    points, normals, tris = [], [], []
    offset = 0
    for strip in strips:
        prof = np.asarray(strip, np.float64)
        for r, z, nr, nz in prof:
            points.append(np.stack([r * cos, r * sin, np.full_like(cos, z)], axis=1))
            normals.append(np.stack([nr * cos, nr * sin, np.full_like(cos, nz)], axis=1))
        ring = segments + 1
        for i in range(len(prof) - 1):
            a = offset + i * ring + np.arange(segments)
            b = a + ring
            tris.append(np.stack([a, a + 1, b + 1], axis=1))
            tris.append(np.stack([a, b + 1, b], axis=1))
        offset += len(prof) * ring
    n = np.concatenate(normals)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
    return _smooth(np.concatenate(points), np.concatenate(tris), n)


def _arc(radius: float, z0: float, lat0: float, lat1: float, rings: int) -> list[tuple[float, ...]]:
    lats = np.linspace(lat0, lat1, rings + 1)
    return [
        (radius * math.cos(t), z0 + radius * math.sin(t), math.cos(t), math.sin(t)) for t in lats
    ]


def sphere(radius: float) -> Shape:
    return _lathe([_arc(radius, 0.0, -math.pi / 2, math.pi / 2, RINGS)], SEGMENTS)


def cylinder(radius: float, height: float, axis: str) -> Shape:
    h = height / 2
    side = [(radius, -h, 1.0, 0.0), (radius, h, 1.0, 0.0)]
    bottom = [(0.0, -h, 0.0, -1.0), (radius, -h, 0.0, -1.0)]
    top = [(radius, h, 0.0, 1.0), (0.0, h, 0.0, 1.0)]
    return _to_axis(_lathe([side, bottom, top], SEGMENTS), axis)


def cone(radius: float, height: float, axis: str) -> Shape:
    """Apex at +height/2 on the axis, base disc at -height/2 (USD's UsdGeomCone)."""
    h = height / 2
    slant = math.hypot(radius, height) or 1.0
    nr, nz = height / slant, radius / slant
    side = [(radius, -h, nr, nz), (0.0, h, nr, nz)]
    bottom = [(0.0, -h, 0.0, -1.0), (radius, -h, 0.0, -1.0)]
    return _to_axis(_lathe([side, bottom], SEGMENTS), axis)


def capsule(radius: float, height: float, axis: str) -> Shape:
    """A cylinder of ``height`` between two hemispheres of ``radius`` (UsdGeomCapsule)."""
    h = height / 2
    rings = RINGS // 2
    profile = _arc(radius, -h, -math.pi / 2, 0.0, rings) + _arc(radius, h, 0.0, math.pi / 2, rings)
    return _to_axis(_lathe([profile], SEGMENTS), axis)


def plane(width: float, length: float, axis: str) -> Shape:
    """UsdGeomPlane: a width x length rectangle through the origin, normal along ``axis``."""
    w, ln = width / 2, length / 2
    pts = np.array([[-w, -ln, 0.0], [w, -ln, 0.0], [w, ln, 0.0], [-w, ln, 0.0]])
    return _to_axis(_flat(pts, [[0, 1, 2], [0, 2, 3]]), axis)
