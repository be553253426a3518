"""Replicator's camera conventions, inverted for tests: matrices from camera_params, projection
of world points to pixels and pixel rays back into the world."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def camera_matrices(cp: dict) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """cameraViewTransform [4,4], cameraProjection [4,4] (row-major, row vectors), (W, H)."""
    view = np.array(cp["cameraViewTransform"], float).reshape(4, 4)
    proj = np.array(cp["cameraProjection"], float).reshape(4, 4)
    return view, proj, tuple(cp["renderProductResolution"])


def project(points: np.ndarray, view: np.ndarray, proj: np.ndarray, res) -> np.ndarray:
    """World points [N,3] -> pixel (u, v) [N,2], row-vector convention: clip = p @ V @ P."""
    p = np.c_[points, np.ones(len(points))] @ view @ proj
    ndc = p[:, :3] / p[:, 3:4]
    w, h = res
    return np.c_[(ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * h]


def pixel_rays(view: np.ndarray, proj: np.ndarray, res) -> tuple[np.ndarray, np.ndarray]:
    """Camera position [3] and world ray directions [H,W,3] through pixel centres, scaled to
    camera-space z = -1 (so t is the image-plane distance). Inverse of the row-vector
    conventions: camera-to-world = inv(V), translation in its last row, camera looks along -Z."""
    w, h = res
    c2w = np.linalg.inv(view)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (2 * u / w - 1) / proj[0, 0]
    y = (1 - 2 * v / h) / proj[1, 1]
    cam = np.stack([x, y, -np.ones_like(x)], axis=-1)
    return c2w[3, :3], cam @ c2w[:3, :3]


def read_rgba(path: Path) -> np.ndarray:
    """[H,W,4] uint8 RGBA (cv2 reads BGRA)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.ndim == 3 and img.shape[2] == 4, path
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
