"""A captured dataset is laid out, typed and keyed like real BasicWriter output, and reads back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

from bridge_core.datasets.detect import open_dataset
from tests.capture.conftest import CAMERAS, FRAMES, REALDATA, RESOLUTION

REAL_YCB = REALDATA / "replicator-basicwriter-ycb"
# Annotators both the real sample and a capture write (the capture adds normals; the real
# sample adds boxes and occlusion, which need no ray casting and are not captured).
SHARED = {
    "rgb",
    "distance_to_image_plane",
    "distance_to_camera",
    "semantic_segmentation",
    "instance_segmentation",
    "camera_params",
}
KEY = re.compile(r"^\(\d{1,3}, \d{1,3}, \d{1,3}, \d{1,3}\)$")


def _pattern(name: str) -> str:
    return re.sub(r"_\d{4}\.", "_NNNN.", name)


def _rgba(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.ndim == 3 and img.shape[2] == 4, path
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def test_layout_names_dtypes_and_keys_match_real_ycb(warehouse_multi: Path) -> None:
    real = REAL_YCB / "Replicator_04"
    assert sorted(p.name for p in warehouse_multi.iterdir()) == [
        "Replicator",
        "Replicator_01",
        "metadata.txt",
    ]
    real_meta = json.loads((REAL_YCB / "metadata.txt").read_text())
    meta = json.loads((warehouse_multi / "metadata.txt").read_text())
    assert list(meta) == list(real_meta) and meta["version"] == real_meta["version"]
    real_cp = json.loads((real / "camera_params" / "camera_params_0000.json").read_text())
    real_depth = np.load(real / "distance_to_camera" / "distance_to_camera_0000.npy")
    real_labels = json.loads(
        (real / "semantic_segmentation" / "semantic_segmentation_labels_0000.json").read_text()
    )
    for rp in ("Replicator", "Replicator_01"):
        root = warehouse_multi / rp
        assert {p.name for p in root.iterdir()} == SHARED | {"normals"}
        for ann in SHARED:
            assert {_pattern(p.name) for p in (root / ann).iterdir()} == {
                _pattern(p.name) for p in (real / ann).iterdir()
            }, ann
            assert len(list((root / ann).glob(f"{ann}_[0-9]*"))) == FRAMES[1] - FRAMES[0]
        for i in range(FRAMES[1] - FRAMES[0]):
            n = f"{i:04d}"
            cp = json.loads((root / "camera_params" / f"camera_params_{n}.json").read_text())
            assert list(cp) == list(real_cp)
            for k, v in real_cp.items():
                assert type(cp[k]) is type(v), k
                assert not isinstance(v, list) or k == "cameraFisheyeLensP" or len(cp[k]) == len(v)
            assert cp["renderProductResolution"] == list(RESOLUTION)
            for ann in ("distance_to_image_plane", "distance_to_camera"):
                depth = np.load(root / ann / f"{ann}_{n}.npy")
                assert depth.dtype == real_depth.dtype and depth.shape == RESOLUTION[::-1]
            normals = np.load(root / "normals" / f"normals_{n}.npy")
            assert normals.dtype == np.float32 and normals.shape == (*RESOLUTION[::-1], 4)
            for png in ("rgb/rgb", "semantic_segmentation/semantic_segmentation"):
                assert _rgba(root / f"{png}_{n}.png").shape == (*RESOLUTION[::-1], 4)
            sem = root / "semantic_segmentation"
            ins = root / "instance_segmentation"
            for path in (
                sem / f"semantic_segmentation_labels_{n}.json",
                ins / f"instance_segmentation_mapping_{n}.json",
                ins / f"instance_segmentation_semantics_mapping_{n}.json",
            ):
                data = json.loads(path.read_text())
                assert all(KEY.match(k) for k in data), path
                if path.name.startswith("instance_segmentation_mapping"):
                    assert data["(0, 0, 0, 0)"] == "BACKGROUND"
                else:
                    assert all(set(v) == {"class"} for v in data.values())
                    assert data["(0, 0, 0, 255)"] == real_labels["(0, 0, 0, 255)"]


def test_reads_back_through_open_dataset(warehouse_multi: Path) -> None:
    data = open_dataset(warehouse_multi)
    assert data.layout == "basicwriter"
    assert {n: len(c.frames) for n, c in data.cameras.items()} == {
        "Replicator": 3,
        "Replicator_01": 3,
    }
    frame = data.camera("Replicator").frames[0]
    assert frame.rgb.shape == (*RESOLUTION[::-1], 3)
    assert frame.depth.dtype == np.float32 and 0.5 < frame.depth_valid.mean() <= 1.0
    classes = {frame.semantic.labels[i] for i in np.unique(frame.semantic.ids)}
    assert {"floor", "wall", "shelf", "box", "forklift"} <= classes
    paths = set(frame.instance.labels.values())
    assert "/World/Warehouse/Forklift_01" in paths and "/World/Warehouse/Boxes/Box_01" in paths
    cam = frame.camera_params
    assert (cam.width, cam.height) == RESOLUTION
    eye = json.loads(
        (warehouse_multi / "Replicator/camera_params/camera_params_0000.json").read_text()
    )
    view = np.array(eye["cameraViewTransform"]).reshape(4, 4)
    np.testing.assert_allclose(cam.cam_to_world, np.linalg.inv(view).T, atol=1e-9)


def test_single_camera_writes_flat_layout(warehouse_flat: Path) -> None:
    names = {p.name for p in warehouse_flat.iterdir()}
    assert "rgb_0000.png" in names and "camera_params_0001.json" in names
    assert "instance_segmentation_semantics_mapping_0000.json" in names
    data = open_dataset(warehouse_flat)
    (camera,) = data.cameras.values()
    assert len(camera.frames) == 2 and camera.frames[1].depth.shape == RESOLUTION[::-1]


def test_labels_follow_replicator_rules(warehouse_multi: Path) -> None:
    """Inherited, nested and legacy labels, instancing; guide and invisible prims absent."""
    classes, paths = set(), set()
    for rp in ("Replicator", "Replicator_01"):
        for f in sorted((warehouse_multi / rp / "instance_segmentation").glob("*_mapping_*")):
            data = json.loads(f.read_text())
            if "semantics" in f.name:
                classes |= {v["class"] for v in data.values()}
            else:
                paths |= set(data.values())
    # LabelsAPI (floor, box, ...), inherited from a parent Xform (wall), legacy schema
    # (forklift, person), nested (forklift,fork), point instancer (cone), instanceable (pallet).
    expected = {"floor", "wall", "shelf", "box", "forklift", "forklift,fork", "person", "cone"}
    assert expected | {"pallet"} <= classes
    assert "guide" not in classes and "hidden" not in classes
    assert "/World/Warehouse/Walls" in paths  # the labelled parent reports, not each cube
    assert "/World/Warehouse/Pallet_01" in paths and "/World/Warehouse/Cones" in paths


def test_camera_order_names_render_products(warehouse_multi: Path) -> None:
    """Replicator_01 is the second --camera (the aisle camera, 24 mm)."""
    cp = json.loads(
        (warehouse_multi / "Replicator_01/camera_params/camera_params_0000.json").read_text()
    )
    assert cp["cameraFocalLength"] == 24.0 and CAMERAS[1].endswith("Aisle")
