"""Replicator-shaped data made from the sample dataset, and a recording stand-in model."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge_core.controls.stack import ControlStack
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.models import CONTROL_NAMES

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "datasets" / "warehouse_tiny"
RENDER_PRODUCTS = ("Replicator", "Replicator_01")
FRAMES = 8
EXT_DIR = REPO / "exts" / "cosmos.transfer.bridge"


def _rgba(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


def _segmentation(picture: Path, labels: Path) -> dict[str, Any]:
    """As the colorized annotator hands it over: packed RGBA uint32 [H,W] + idToLabels."""
    rgba = _rgba(picture)
    packed = rgba.view(np.uint32).reshape(rgba.shape[:2])
    return {"data": packed, "info": {"idToLabels": json.loads(labels.read_text())}}


def annotator_data(render_product: str, frame: int) -> dict[str, Any]:
    """One render product's annotator outputs for ``frame``, as Replicator gives them.

    The sample's instance_segmentation stands in for instance_id_segmentation_fast (same
    picture format and colour -> prim path mapping); camera_params carries numpy arrays.
    """
    folder = SAMPLE / render_product

    def file(annotator: str, kind: str = "", ext: str = "json") -> Path:
        stem = f"{annotator}_{kind}" if kind else annotator
        return folder / annotator / f"{stem}_{frame:04d}.{ext}"

    camera = json.loads(file("camera_params").read_text())
    for key in ("cameraViewTransform", "cameraProjection"):
        camera[key] = np.asarray(camera[key], np.float64)
    return {
        "rgb": _rgba(file("rgb", ext="png")),
        "distance_to_image_plane": np.load(file("distance_to_image_plane", ext="npy")),
        "semantic_segmentation": _segmentation(
            file("semantic_segmentation", ext="png"), file("semantic_segmentation", "labels")
        ),
        "instance_id_segmentation_fast": _segmentation(
            file("instance_segmentation", ext="png"), file("instance_segmentation", "mapping")
        ),
        "normals": np.load(file("normals", ext="npy")),
        "camera_params": camera,
    }


def replicator_frames(render_products: tuple[str, ...]) -> list[dict[str, Any]]:
    """The sample's frames as write(data) dicts, legacy layout: plain annotator keys for one
    render product; "<annotator>-<rpName>" keys and "rp_<name>" entries for several."""
    frames = []
    for frame in range(FRAMES):
        data: dict[str, Any] = {"trigger_outputs": {}, "reference_time": (frame, 60)}
        for rp in render_products:
            views = annotator_data(rp, frame)
            if len(render_products) == 1:
                data.update(views)
                continue
            data.update({f"{name}-{rp}": value for name, value in views.items()})
            data[f"rp_{rp}"] = {"resolution": [96, 54], "camera": f"/World/Cameras/{rp}"}
        frames.append(data)
    return frames


class RecordingModel:
    """A TransferModel that returns grey frames and records the thread of each call.

    ``release``: while set, generate() runs; clear it to hold every call until it is set
    again (``generating`` is set when a call is waiting or running).
    """

    def __init__(self, frames_per_chunk: int = 4, delay: float = 0.05):
        self.calls: list[tuple[int, int]] = []  # (thread ident, frames)
        self._delay = delay
        self._needs = ModelRequirements(16, frames_per_chunk, CONTROL_NAMES)
        self.release = threading.Event()
        self.release.set()
        self.generating = threading.Event()

    @property
    def requirements(self) -> ModelRequirements:
        return self._needs

    def generate(
        self,
        controls: ControlStack,
        prompt: Any,
        negative_prompt: Any,
        seed: int,
        settings: SamplingSettings,
    ) -> np.ndarray:
        self.generating.set()
        # Bounded, so a test whose code under test never lets go fails instead of hanging.
        self.release.wait(timeout=30)
        # Slow enough that a caller not waiting for generation would see it unfinished.
        time.sleep(self._delay)
        t, h, w = controls.shape
        self.calls.append((threading.get_ident(), t))
        return np.full((t, h, w, 3), 128, np.uint8)
