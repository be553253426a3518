"""The warehouse_tiny sample must look to every reader exactly like real BasicWriter output.

Structure is compared against the real Isaac Sim files in shared/realdata; geometry is
checked against analytic answers using only what was written
(camera_params json), never the generator's internals.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.replicator_geometry import camera_matrices, pixel_rays, project, read_rgba

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
REAL_YCB = REAL / "replicator-basicwriter-ycb"
COMMITTED = ROOT / "samples" / "datasets" / "warehouse_tiny"
MAX_BYTES = 3_000_000
SHARED_ANNOTATORS = {
    "rgb",
    "distance_to_image_plane",
    "distance_to_camera",
    "semantic_segmentation",
    "instance_segmentation",
    "camera_params",
    "bounding_box_2d_tight",
}


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_warehouse_tiny", ROOT / "samples" / "make_warehouse_tiny.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The commit-sized dataset (script defaults)."""
    return gen.make_warehouse_tiny(tmp_path_factory.mktemp("small") / "warehouse_tiny")


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A larger variant at the 256x144 render resolution, two frames (start and end pose)."""
    out = tmp_path_factory.mktemp("large") / "warehouse_256"
    return gen.make_warehouse_tiny(out, frames=2, resolution=(256, 144))


# ------------------------------------------------------------------------------------ helpers


def _colour_key(key: str) -> tuple[int, ...]:
    return tuple(ast.literal_eval(key))


def _pattern(name: str) -> str:
    return re.sub(r"_\d{4}\.", "_NNNN.", name)


def _views(root: Path):
    """(render product dir, frame string) for every written frame."""
    for rp in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted((rp / "camera_params").glob("camera_params_*.json")):
            yield rp, f.stem.rsplit("_", 1)[1]


def _camera(rp: Path, nnnn: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    return camera_matrices(
        json.loads((rp / "camera_params" / f"camera_params_{nnnn}.json").read_text())
    )


def _file(rp: Path, ann: str, nnnn: str, kind: str = "", ext: str = "json") -> Path:
    """<rp>/<ann>/<ann>[_<kind>]_NNNN.<ext>, BasicWriter's naming."""
    return rp / ann / f"{ann}{'_' + kind if kind else ''}_{nnnn}.{ext}"


def _json(path: Path):
    return json.loads(path.read_text())


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# -------------------------------------------------------------------------------------- tests


def test_layout_and_file_names_match_real(small: Path) -> None:
    assert sorted(p.name for p in small.iterdir()) == [
        "Replicator",
        "Replicator_01",
        "metadata.txt",
    ]
    real_rp = REAL_YCB / "Replicator_04"
    for rp in ("Replicator", "Replicator_01"):
        ours = {p.name for p in (small / rp).iterdir()}
        assert ours == SHARED_ANNOTATORS | {"normals"}
        for ann in SHARED_ANNOTATORS:
            real_names = {_pattern(p.name) for p in (real_rp / ann).iterdir()}
            our_names = {_pattern(p.name) for p in (small / rp / ann).iterdir()}
            assert our_names == real_names, ann
        assert {p.name for p in (small / rp / "rgb").iterdir()} == {
            f"rgb_{i:04d}.png" for i in range(gen.DEFAULT_FRAMES)
        }
    real_meta = json.loads((REAL_YCB / "metadata.txt").read_text())
    our_meta = json.loads((small / "metadata.txt").read_text())
    assert list(our_meta) == list(real_meta)
    assert our_meta["name"] == "BasicWriter" and our_meta["version"] == real_meta["version"]


def test_dtypes_and_json_keys_match_real(small: Path) -> None:
    real = REAL_YCB / "Replicator_04"
    real_cp = json.loads((real / "camera_params" / "camera_params_0000.json").read_text())
    real_bb = np.load(real / "bounding_box_2d_tight" / "bounding_box_2d_tight_0000.npy")
    real_seg = json.loads(
        (real / "semantic_segmentation" / "semantic_segmentation_labels_0000.json").read_text()
    )
    real_depth = np.load(real / "distance_to_image_plane" / "distance_to_image_plane_0000.npy")
    key_re = re.compile(r"^\(\d{1,3}, \d{1,3}, \d{1,3}, \d{1,3}\)$")
    for rp, nnnn in _views(small):
        cp = json.loads((rp / "camera_params" / f"camera_params_{nnnn}.json").read_text())
        assert list(cp) == list(real_cp)
        for k, v in real_cp.items():
            assert type(cp[k]) is type(v), k
            if isinstance(v, list) and k != "cameraFisheyeLensP":
                assert len(cp[k]) == len(v), k
        assert cp["cameraModel"] == "pinhole" and cp["cameraFocalLength"] == 18.0

        bb = np.load(rp / "bounding_box_2d_tight" / f"bounding_box_2d_tight_{nnnn}.npy")
        assert bb.dtype == real_bb.dtype and bb.dtype.descr == real_bb.dtype.descr
        labels = json.loads(
            (rp / "bounding_box_2d_tight" / f"bounding_box_2d_tight_labels_{nnnn}.json").read_text()
        )
        paths = json.loads(
            (
                rp / "bounding_box_2d_tight" / f"bounding_box_2d_tight_prim_paths_{nnnn}.json"
            ).read_text()
        )
        assert {str(s) for s in bb["semanticId"]} == set(labels)
        assert all(set(v) == {"class"} for v in labels.values())
        assert len(paths) == len(bb) and all(p.startswith("/World/Warehouse/") for p in paths)

        for ann in ("distance_to_image_plane", "distance_to_camera"):
            d = np.load(rp / ann / f"{ann}_{nnnn}.npy")
            assert d.dtype == real_depth.dtype and d.ndim == 2 and not np.isnan(d).any()
        normals = np.load(rp / "normals" / f"normals_{nnnn}.npy")
        assert normals.dtype == np.float32 and normals.shape == (*d.shape, 4)

        seg_dir, ins_dir = rp / "semantic_segmentation", rp / "instance_segmentation"
        for path in (
            seg_dir / f"semantic_segmentation_labels_{nnnn}.json",
            ins_dir / f"instance_segmentation_mapping_{nnnn}.json",
            ins_dir / f"instance_segmentation_semantics_mapping_{nnnn}.json",
        ):
            data = json.loads(path.read_text())
            assert all(key_re.match(k) for k in data), path
            background, unlabelled = "(0, 0, 0, 0)", "(0, 0, 0, 255)"
            if "mapping_" in path.name and "semantics" not in path.name:
                assert data[background] == "BACKGROUND" and data[unlabelled] == "UNLABELLED"
            else:
                assert data[background] == real_seg[background]
                assert data[unlabelled] == real_seg[unlabelled]
        for png in (
            rp / "rgb" / f"rgb_{nnnn}.png",
            seg_dir / f"semantic_segmentation_{nnnn}.png",
            ins_dir / f"instance_segmentation_{nnnn}.png",
        ):
            assert read_rgba(png).shape == (*d.shape, 4)


def test_segmentation_colours_and_boxes_are_consistent(small: Path) -> None:
    for rp, nnnn in _views(small):
        ins_dir = rp / "instance_segmentation"
        for ann, kind in (
            ("semantic_segmentation", "labels"),
            ("instance_segmentation", "mapping"),
        ):
            png, js = _file(rp, ann, nnnn, ext="png"), _file(rp, ann, nnnn, kind)
            img = read_rgba(png)
            used = {tuple(c) for c in np.unique(img.reshape(-1, 4), axis=0)}
            keys = {_colour_key(k) for k in json.loads(js.read_text())}
            assert used <= keys, png
        depth = np.load(rp / "distance_to_image_plane" / f"distance_to_image_plane_{nnnn}.npy")
        ins = read_rgba(ins_dir / f"instance_segmentation_{nnnn}.png")
        assert (ins[np.isinf(depth)] == 0).all()  # no hit -> BACKGROUND (0,0,0,0)
        mapping_json = _json(_file(rp, "instance_segmentation", nnnn, "mapping"))
        mapping = {v: _colour_key(k) for k, v in mapping_json.items()}
        bb_dir = rp / "bounding_box_2d_tight"
        boxes = np.load(bb_dir / f"bounding_box_2d_tight_{nnnn}.npy")
        paths = json.loads((bb_dir / f"bounding_box_2d_tight_prim_paths_{nnnn}.json").read_text())
        for row, path in zip(boxes, paths, strict=True):
            ys, xs = np.nonzero((ins == mapping[path]).all(axis=-1))
            assert (row["x_min"], row["y_min"], row["x_max"], row["y_max"]) == (
                xs.min(), ys.min(), xs.max(), ys.max()
            )  # fmt: skip
            assert 0.0 <= row["occlusionRatio"] < 1.0


def test_floor_depth_matches_analytic_plane(large: Path) -> None:
    for rp, nnnn in _views(large):
        view, proj, res = _camera(rp, nnnn)
        eye, dirs = pixel_rays(view, proj, res)
        labels = json.loads(
            (rp / "semantic_segmentation" / f"semantic_segmentation_labels_{nnnn}.json").read_text()
        )
        floor = next(_colour_key(k) for k, v in labels.items() if v["class"] == "floor")
        seg = read_rgba(rp / "semantic_segmentation" / f"semantic_segmentation_{nnnn}.png")
        mask = (seg == floor).all(axis=-1)
        assert mask.mean() > 0.1
        t = -eye[2] / dirs[..., 2]  # floor is z = 0 in Isaac's Z-up world
        plane = np.load(rp / "distance_to_image_plane" / f"distance_to_image_plane_{nnnn}.npy")
        cam = np.load(rp / "distance_to_camera" / f"distance_to_camera_{nnnn}.npy")
        np.testing.assert_allclose(plane[mask], t[mask], rtol=1e-5)
        np.testing.assert_allclose(cam[mask], (t * np.linalg.norm(dirs, axis=-1))[mask], rtol=1e-5)
        normals = np.load(rp / "normals" / f"normals_{nnnn}.npy")
        np.testing.assert_allclose(normals[mask], np.broadcast_to([0, 0, 1, 1], (mask.sum(), 4)))


@pytest.mark.parametrize(
    ("prim_path", "solid_part"),
    [("/World/Warehouse/Worker_01", 2), ("/World/Warehouse/Forklift_01", 0)],
)
def test_object_centre_projects_onto_its_instance(
    large: Path, prim_path: str, solid_part: int
) -> None:
    """Centre of a solid part (torso, forklift chassis) taken from the scene description,
    projected with the written camera_params, must land on that prim's instance colour."""
    frames = len(list((large / "Replicator" / "rgb").iterdir()))
    for rp, nnnn in _views(large):
        scene = gen.build_scene(gen.phase(int(nnnn), frames))
        inst = next(i for i in scene if i.prim_path == prim_path)
        centre = np.asarray(inst.parts[solid_part].center, float)
        view, proj, res = _camera(rp, nnnn)
        u, v = project(centre[None], view, proj, res)[0]
        assert 0 <= u < res[0] and 0 <= v < res[1], (rp.name, nnnn)
        ins_dir = rp / "instance_segmentation"
        colour = tuple(
            int(c) for c in read_rgba(ins_dir / f"instance_segmentation_{nnnn}.png")[int(v), int(u)]
        )
        mapping = json.loads((ins_dir / f"instance_segmentation_mapping_{nnnn}.json").read_text())
        assert mapping[str(colour)] == prim_path, (rp.name, nnnn)


def test_projection_convention_matches_real_ycb() -> None:
    """The same project() applied to the real files: bounding_box_3d centres fall inside the
    real tight 2D boxes, so the conventions the test relies on are Isaac's own."""
    rp = REAL_YCB / "Replicator_04"
    view, proj, res = _camera(rp, "0000")
    b3 = np.load(rp / "bounding_box_3d" / "bounding_box_3d_0000.npy")
    b2 = np.load(rp / "bounding_box_2d_tight" / "bounding_box_2d_tight_0000.npy")
    inside = 0
    for box3, box2 in zip(b3, b2, strict=True):
        local = [(box3[f"{a}_min"] + box3[f"{a}_max"]) / 2 for a in "xyz"]
        world = np.r_[local, 1.0] @ box3["transform"].astype(float)
        u, v = project(world[None, :3], view, proj, res)[0]
        if 0 <= u < res[0] and 0 <= v < res[1]:
            assert (
                box2["x_min"] <= u <= box2["x_max"] + 1 and box2["y_min"] <= v <= box2["y_max"] + 1
            )
            inside += 1
    assert inside >= 2


def test_distance_to_camera_not_below_image_plane(small: Path) -> None:
    near = gen.NEAR_FAR[0]
    for rp, nnnn in _views(small):
        plane = np.load(rp / "distance_to_image_plane" / f"distance_to_image_plane_{nnnn}.npy")
        cam = np.load(rp / "distance_to_camera" / f"distance_to_camera_{nnnn}.npy")
        assert (np.isinf(plane) == np.isinf(cam)).all()
        hit = np.isfinite(plane)
        assert 0.5 < hit.mean() < 1.0  # some sky (inf) in every view, like the real sample
        assert (cam[hit] >= plane[hit]).all() and (plane[hit] >= near).all()
        normals = np.load(rp / "normals" / f"normals_{nnnn}.npy")
        np.testing.assert_allclose(np.linalg.norm(normals[hit][:, :3], axis=-1), 1.0, rtol=1e-5)
        assert (normals[hit][:, 3] == 1.0).all() and (normals[~hit] == 0).all()


def test_generated_and_committed_folders_are_small(small: Path) -> None:
    assert _folder_bytes(small) < MAX_BYTES
    if COMMITTED.is_dir():
        assert _folder_bytes(COMMITTED) < MAX_BYTES
        ours = sorted(p.relative_to(small) for p in small.rglob("*") if p.is_file())
        committed = sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*") if p.is_file())
        assert ours == committed  # the committed folder is what the script makes today


def test_deterministic_and_cli(tmp_path: Path) -> None:
    a = gen.make_warehouse_tiny(tmp_path / "a", frames=1, resolution=(48, 27))
    gen.main(["--out", str(tmp_path / "b"), "--frames", "1", "--resolution", "48x27"])
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    for f in files:
        assert (a / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
