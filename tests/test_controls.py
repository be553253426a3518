"""Control videos: ranges, per-clip normalisation, stable colours, presets, geometric edges."""

from __future__ import annotations

import numpy as np
import pytest

from bridge_core.controls.blur import blur_control
from bridge_core.controls.build import build_control_stack
from bridge_core.controls.depth import depth_control
from bridge_core.controls.edge import canny_edges, depth_edges, segment_edges
from bridge_core.controls.presets import PRESET_NAMES
from bridge_core.controls.seg import label_colour, seg_control
from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.errors import DatasetError, InputError
from bridge_core.spec.models import ControlSpec
from tests.conftest import TRANSFER1_ASSETS, YCB


def test_depth_control_near_is_bright_and_invalid_is_far():
    depth = np.full((2, 8, 8), 4.0, np.float32)
    depth[:, :, :4] = 1.0
    depth[0, 0, 0] = np.inf
    control = depth_control(depth)
    assert control.shape == (2, 8, 8, 3) and control.dtype == np.float32
    assert control[1, 4, 1, 0] > control[1, 4, 6, 0]
    assert control[0, 0, 0, 0] == 0.0
    assert control.min() >= 0.0 and control.max() <= 1.0


def test_depth_control_is_normalised_per_clip_not_per_frame():
    """A wall at 5 m keeps its brightness when something comes near in a later frame."""
    depth = np.full((3, 8, 8), 5.0, np.float32)
    depth[:, 0, 0] = 20.0
    depth[2, :4, :4] = 0.5
    control = depth_control(depth)
    assert control[0, 6, 6, 0] == control[2, 6, 6, 0]


def test_all_invalid_depth_is_an_error():
    with pytest.raises(DatasetError, match=r"no valid pixel"):
        depth_control(np.full((2, 4, 4), np.inf, np.float32))


def test_seg_colour_is_stable_across_frames_and_ids():
    ids = np.array([[[0, 1]], [[1, 0]]])  # the same classes swap ids between frames
    labels = [{0: "box", 1: "pallet"}, {0: "pallet", 1: "box"}]
    control = seg_control(ids, labels)
    assert np.array_equal(control[0, 0, 0], control[1, 0, 0])
    assert not np.array_equal(control[0, 0, 0], control[0, 0, 1])
    assert label_colour("BACKGROUND") == (0, 0, 0)
    assert label_colour("box") == label_colour("box") != (0, 0, 0)


def test_edge_presets_are_ordered():
    rng = np.random.default_rng(0)
    rgb = (rng.random((1, 64, 64, 3)) * 255).astype(np.uint8)
    counts = [canny_edges(rgb, p).sum() for p in PRESET_NAMES]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_geometric_edges_find_what_flat_rgb_hides():
    """Two grey boxes of the same colour at different depths: RGB Canny sees nothing."""
    depth = np.full((1, 32, 32), 4.0, np.float32)
    depth[:, :, 16:] = 2.0
    ids = np.zeros((1, 32, 32), np.int32)
    ids[:, 16:, :] = 1
    rgb = np.full((1, 32, 32, 3), 128, np.uint8)
    assert not canny_edges(rgb).any()
    assert depth_edges(depth)[0, :, 15].all()
    assert segment_edges(ids)[0, 15, :].all()


def test_blur_presets_blur_more_as_they_rise():
    rng = np.random.default_rng(1)
    rgb = (rng.random((1, 96, 128, 3)) * 255).astype(np.uint8)
    low, high = blur_control(rgb, "very_low"), blur_control(rgb, "very_high")
    assert low.shape == rgb.shape and low.min() >= 0 and high.max() <= 1
    assert np.abs(np.diff(high, axis=2)).mean() <= np.abs(np.diff(low, axis=2)).mean()
    assert np.abs(np.diff(low, axis=2)).mean() < np.abs(np.diff(rgb / 255.0, axis=2)).mean()


def test_stack_from_real_basicwriter_clip():
    clip = open_dataset(YCB).camera("Replicator_04").clips()[0]
    specs = {name: ControlSpec() for name in ("edge", "depth", "seg", "blur")}
    stack = build_control_stack(clip, specs)
    assert stack.names == ("edge", "depth", "seg", "blur")
    assert stack.shape == (4, 512, 512)
    for name in stack.names:
        assert stack.videos[name].dtype == np.float32
        assert stack.videos[name].min() >= 0.0 and stack.videos[name].max() <= 1.0
    # Four controls at weight 1 each are divided by their sum.
    assert np.allclose(stack.weights["edge"], 0.25)
    # A class keeps one colour over the whole clip.
    banana = [f.semantic for f in clip.frames]
    colours = {
        tuple(stack.videos["seg"][t][s.ids == i][0])
        for t, s in enumerate(banana)
        for i, c in s.labels.items()
        if c == "banana" and (s.ids == i).any()
    }
    assert len(colours) == 1


def test_auto_source_uses_the_datasets_control_video():
    clip = open_dataset(TRANSFER1_ASSETS).camera("example1").clips(clip_length=3)[0]
    stack = build_control_stack(clip, {"depth": ControlSpec()})
    assert np.array_equal(stack.videos["depth"], clip.stack("control/depth"))


def test_control_that_cannot_be_built_names_the_field(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "f_0.png"), np.zeros((8, 8, 3), np.uint8))
    clip = open_dataset(tmp_path).clips()[0]
    with pytest.raises(InputError, match=r"controls.depth.source.*the depth control needs depth"):
        build_control_stack(clip, {"depth": ControlSpec()})


def test_control_stack_checks_shapes():
    video = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"weight map has shape"):
        ControlStack({"edge": video}, {"edge": np.zeros((2, 4, 5), np.float32)})


def test_a_floor_at_a_grazing_angle_has_no_depth_edges():
    """A plane's inverse depth is linear in the image, even when depth changes fast."""
    rows = np.arange(54, dtype=np.float32)[:, None]
    inverse = 0.02 + 0.03 * rows + 0.001 * np.arange(96, dtype=np.float32)[None, :]
    depth = np.broadcast_to(1.0 / inverse, (1, 54, 96)).astype(np.float32)
    assert (depth[0, 1] / depth[0, 2] > 1.1).all()  # rows far apart: 4% jumps everywhere
    assert not depth_edges(depth).any()
    # A box standing on it still makes an edge.
    depth[0, 20:30, 40:60] = depth[0, 29, 50] * 0.5
    assert depth_edges(depth)[0, 20:30, 39:41].any()
