"""Dataset readers against real Replicator and Cosmos samples, and the errors bad data gets."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from bridge_core.datasets.detect import detect_layout, open_dataset
from bridge_core.datasets.files import picture_size, read_image, read_rgb, write_video
from bridge_core.errors import DatasetError
from tests.conftest import TRANSFER1_ASSETS, YCB


@pytest.fixture(scope="module")
def ycb():
    return open_dataset(YCB)


def test_basicwriter_render_products(ycb):
    assert ycb.layout == "basicwriter"
    assert {n: len(c.frames) for n, c in ycb.cameras.items()} == {
        "Replicator_03": 1,
        "Replicator_04": 4,
        "Replicator_05": 1,
    }
    assert all(c.resolution == (512, 512) for c in ycb.cameras.values())
    assert ycb.metadata["name"] == "BasicWriter"


def test_basicwriter_frame_contents(ycb):
    frame = ycb.camera("Replicator_04").frames[2]
    assert frame.index == 2
    assert frame.rgb.shape == (512, 512, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.dtype == np.float32 and frame.depth_valid.all()
    semantic = frame.semantic
    classes = {semantic.labels[i] for i in np.unique(semantic.ids)}
    assert {"soup_can", "meat_can", "marker", "banana"} <= classes
    instance = frame.instance
    assert "/World/Banana" in instance.labels.values()
    banana = next(i for i, p in instance.labels.items() if p == "/World/Banana")
    assert instance.semantics[banana] == "banana"
    # The semantic and instance pictures agree on where the banana is.
    banana_sem = next(i for i, c in semantic.labels.items() if c == "banana")
    assert np.array_equal(semantic.ids == banana_sem, instance.ids == banana)
    label_files = frame.label_files
    assert label_files["bounding_box_2d_tight"][0].name == "bounding_box_2d_tight_0002.npy"
    assert {p.name for p in label_files["bounding_box_2d_tight"]} >= {
        "bounding_box_2d_tight_labels_0002.json",
        "bounding_box_2d_tight_prim_paths_0002.json",
    }
    assert "occlusion" in label_files and "camera_params" in label_files


def test_inf_depth_is_invalid(ycb):
    frame = ycb.camera("Replicator_05").frames[0]
    raw = np.load(YCB / "Replicator_05/distance_to_image_plane/distance_to_image_plane_0000.npy")
    assert np.array_equal(frame.depth_valid, np.isfinite(raw))
    assert 0 < frame.depth_valid.mean() < 1


def test_camera_params_match_replicator_projection(ycb):
    """Projecting with our K and pose lands where Replicator's own matrices put a point."""
    frame = ycb.camera("Replicator_04").frames[1]
    raw = json.loads((YCB / "Replicator_04/camera_params/camera_params_0001.json").read_text())
    view = np.array(raw["cameraViewTransform"]).reshape(4, 4)
    proj = np.array(raw["cameraProjection"]).reshape(4, 4)
    cam = frame.camera_params
    world = np.array([0.05, -0.02, 0.03, 1.0])
    clip = world @ view @ proj
    ndc = clip[:2] / clip[3]
    expected = np.array([(ndc[0] + 1) / 2 * 512, (1 - ndc[1]) / 2 * 512])
    p_cam = np.linalg.inv(cam.cam_to_world) @ world
    # USD cameras look along -Z with +Y up; pixels have +y down.
    ray = np.array([p_cam[0], -p_cam[1], -p_cam[2]])
    pixel = (cam.intrinsics @ ray)[:2] / ray[2]
    assert np.allclose(pixel, expected, atol=1e-3)


def test_depth_matches_camera_geometry(ycb):
    """distance_to_camera / distance_to_image_plane follows the pinhole intrinsics."""
    from bridge_core.datasets.basicwriter import radial_to_planar

    frame = ycb.camera("Replicator_04").frames[0]
    radial = np.load(YCB / "Replicator_04/distance_to_camera/distance_to_camera_0000.npy")
    planar = radial_to_planar(radial, frame.camera_params)
    assert np.allclose(planar, frame.depth, rtol=1e-3)


def test_a_clip_stack_and_its_frames_hold_one_copy_of_the_pixels(ycb):
    clip = ycb.camera("Replicator_04").clips()[0]
    rgb, ids = clip.stack("rgb"), clip.stack("semantic")
    for t, frame in enumerate(clip.frames):
        assert np.shares_memory(frame.rgb, rgb) and np.array_equal(frame.rgb, rgb[t])
        assert np.shares_memory(frame.semantic.ids, ids)
        assert frame.semantic.labels == clip.labels("semantic")[t]


def test_control_videos_read_as_121_frame_640x480_clips():
    data = open_dataset(TRANSFER1_ASSETS)
    assert data.layout == "control-videos"
    camera = data.camera("example1")
    assert camera.resolution == (640, 480)
    (clip,) = camera.clips()
    assert len(clip) == 121
    assert {
        "rgb",
        "control/depth",
        "control/edge",
        "control/seg",
        "control/blur",
    } <= clip.modalities
    depth = clip.frames[60].control("depth")
    assert depth.shape == (480, 640, 3) and depth.min() >= 0 and depth.max() <= 1


def test_a_single_video_is_a_dataset():
    data = open_dataset(TRANSFER1_ASSETS / "example1_edge.mp4")
    frame = data.camera("example1").frames[0]
    assert frame.modalities == {"control/edge"}


def test_cosmoswriter_clips(tmp_path):
    rng = np.random.default_rng(0)
    for clip in range(2):
        for modality in ("rgb", "segmentation", "depth", "edges", "shaded_seg"):
            folder = tmp_path / f"clip_{clip:04d}" / modality
            folder.mkdir(parents=True)
            for i in range(3):
                picture = rng.integers(0, 4, (24, 32, 3), dtype=np.uint8) * 60
                cv2.imwrite(str(folder / f"{modality}_{i:04d}.png"), picture)
    # A clip folder may hold only the mp4 of a modality.
    edges = tmp_path / "clip_0001" / "edges"
    shutil.rmtree(edges)
    write_video(tmp_path / "clip_0001" / "edges.mp4", np.full((3, 24, 32, 3), 255, np.uint8))
    data = open_dataset(tmp_path)
    assert data.layout == "cosmoswriter"
    clips = data.clips()
    assert [len(c) for c in clips] == [3, 3]
    assert clips[1].frames[2].control("edge").min() > 0.9
    frame = clips[1].frames[0]
    assert frame.control("edge").shape == (24, 32, 3)
    assert len(frame.semantic.labels) == len(np.unique(frame.semantic.ids))


def test_frames_folder_and_clip_splitting(tmp_path):
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.jpg"), np.full((16, 16, 3), i * 20, np.uint8))
    data = open_dataset(tmp_path)
    assert data.layout == "frames"
    clips = data.clips(clip_length=4, frame_range=(1, 9))
    assert [c.frame_indices for c in clips] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert clips[0].stack("rgb").shape == (4, 16, 16, 3)


@pytest.fixture
def ycb_copy(tmp_path):
    shutil.copytree(YCB, tmp_path / "ycb")
    return tmp_path / "ycb"


def test_corrupt_png_names_the_file(ycb_copy):
    bad = ycb_copy / "Replicator_04/rgb/rgb_0001.png"
    bad.write_bytes(bad.read_bytes()[:100])
    frame = open_dataset(ycb_copy).camera("Replicator_04").frames[1]
    with pytest.raises(DatasetError, match=r"gb_0001.png.*corrupt"):
        _ = frame.rgb


def test_corrupt_npy_names_the_file(ycb_copy):
    bad = ycb_copy / "Replicator_04/distance_to_image_plane/distance_to_image_plane_0002.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    frame = open_dataset(ycb_copy).camera("Replicator_04").frames[2]
    with pytest.raises(DatasetError, match=r"distance_to_image_plane_0002.npy"):
        _ = frame.depth


def test_label_missing_from_label_json(ycb_copy):
    labels = ycb_copy / "Replicator_04/semantic_segmentation/semantic_segmentation_labels_0000.json"
    entries = json.loads(labels.read_text())
    del entries["(25, 255, 82, 255)"]
    labels.write_text(json.dumps(entries))
    frame = open_dataset(ycb_copy).camera("Replicator_04").frames[0]
    with pytest.raises(DatasetError, match=r"semantic_segmentation_0000.png.*\(25, 255, 82, 255\)"):
        _ = frame.semantic


def test_missing_label_json(ycb_copy):
    (
        ycb_copy / "Replicator_03/instance_segmentation/instance_segmentation_mapping_0000.json"
    ).unlink()
    frame = open_dataset(ycb_copy).camera("Replicator_03").frames[0]
    with pytest.raises(DatasetError, match=r"instance_segmentation_mapping"):
        _ = frame.instance


def test_frames_of_different_sizes(ycb_copy):
    path = ycb_copy / "Replicator_04/rgb/rgb_0003.png"
    cv2.imwrite(str(path), np.zeros((256, 256, 4), np.uint8))
    clip = open_dataset(ycb_copy).camera("Replicator_04").clips()[0]
    # Named before anything is decoded, and again if the frames are read unchecked.
    with pytest.raises(DatasetError, match=r"rgb_0003.png: is 256x256 but .* are 512x512"):
        clip.check(["rgb", "semantic"])
    with pytest.raises(DatasetError, match=r"rgb_0003.png: frame 3 .* \(256, 256, 3\)"):
        _ = clip.stack("rgb")


def test_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"not a dataset"):
        detect_layout(tmp_path)
    with pytest.raises(DatasetError, match=r"no such file"):
        open_dataset(tmp_path / "nowhere")


def test_video_roundtrip_and_corrupt_video(tmp_path):
    frames = np.zeros((5, 32, 48, 3), np.uint8)
    frames[:, 8:24, 10:30] = 200
    write_video(tmp_path / "scene_depth.mp4", frames)
    data = open_dataset(tmp_path)
    got = data.camera("scene").frames[4].control("depth")
    assert got.shape == (32, 48, 3)
    assert abs(float(got[16, 20, 0]) - 200 / 255) < 0.05
    (tmp_path / "broken_edge.mp4").write_bytes(b"not a video")
    with pytest.raises(DatasetError, match=r"broken_edge.mp4"):
        open_dataset(tmp_path)


@pytest.mark.parametrize(
    "kind",
    ["rgb", "rgba", "grey", "rgb16", "grey16", "palette", "grey_alpha", "odd_width_rgba"],
)
def test_every_kind_of_png_reads_as_opencv_reads_it(tmp_path, kind):
    """8-bit grey/RGB/RGBA PNGs are decoded by FFmpeg, others by OpenCV: same pixels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / f"{kind}.png"
    shape = {"grey": (30, 44), "grey16": (30, 44), "rgba": (30, 44, 4)}.get(kind, (30, 44, 3))
    dtype = np.uint16 if kind.endswith("16") else np.uint8
    picture = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    if kind == "palette":
        Image.fromarray(picture).quantize(16).save(path)
    elif kind == "grey_alpha":
        Image.fromarray(picture[..., :2], "LA").save(path)
    elif kind == "odd_width_rgba":
        cv2.imwrite(str(path), rng.integers(0, 255, (31, 45, 4), dtype=np.uint8))
    else:
        cv2.imwrite(str(path), picture)
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if stored.ndim == 3:
        stored = stored[..., [2, 1, 0, 3][: stored.shape[2]]]
    colour = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(read_image(path), stored)
    assert np.array_equal(read_rgb(path), colour)


def test_a_corrupt_png_is_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = bytearray(good.read_bytes())
    bad, cut = tmp_path / "flipped.png", tmp_path / "cut.png"
    data[len(data) // 2] ^= 0x10
    bad.write_bytes(bytes(data))
    cut.write_bytes(good.read_bytes()[: len(data) // 2])
    for path in (bad, cut):
        for read in (read_image, read_rgb):
            with pytest.raises(DatasetError, match=f"{path.name}.*not a readable"):
                read(path)


def test_pictures_are_checked_before_they_are_decoded(tmp_path):
    """A header claiming 40000x40000 is refused before gigabytes are allocated; a JPEG
    named .png and a truncated PNG are said as what they are."""
    rgb = np.zeros((8, 8, 3), np.uint8)
    _, png = cv2.imencode(".png", rgb)
    huge = bytearray(png.tobytes())
    huge[16:24] = (40000).to_bytes(4, "big") * 2  # IHDR width, height
    (tmp_path / "huge.png").write_bytes(bytes(huge))
    with pytest.raises(DatasetError, match=r"huge.png: its header claims 40000x40000"):
        read_rgb(tmp_path / "huge.png")
    _, jpeg = cv2.imencode(".jpg", rgb)
    (tmp_path / "photo.png").write_bytes(jpeg.tobytes())
    with pytest.raises(DatasetError, match=r"photo.png: is a JPEG picture named .png"):
        read_image(tmp_path / "photo.png")
    (tmp_path / "cut.png").write_bytes(png.tobytes()[:-6])
    with pytest.raises(DatasetError, match=r"cut.png: truncated PNG"):
        picture_size(tmp_path / "cut.png")
    with pytest.raises(DatasetError, match=r"photo.png: is a JPEG picture named .png"):
        picture_size(tmp_path / "photo.png")
    (tmp_path / "fine.png").write_bytes(png.tobytes())
    assert picture_size(tmp_path / "fine.png") == (8, 8)
