"""Spatiotemporal weight maps: rules, mask files, Cosmos normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.files import write_video
from bridge_core.errors import InputError
from bridge_core.outputs import write_png
from bridge_core.spec.models import ControlSpec
from bridge_core.weights.build import weight_map
from bridge_core.weights.masks import fit_mask, read_mask_array
from bridge_core.weights.rules import combine, depth_band, keyframe_curve, normalise_weights
from tests.conftest import YCB


@pytest.fixture(scope="module")
def clip():
    return open_dataset(YCB).camera("Replicator_04").clips()[0]


def spec(**fields) -> ControlSpec:
    return ControlSpec.model_validate(fields)


def test_normalisation_divides_only_where_the_sum_passes_one():
    a = np.array([[[0.2, 0.9]]], np.float32)
    b = np.array([[[0.3, 0.9]]], np.float32)
    out = normalise_weights({"edge": a, "depth": b})
    assert np.allclose(out["edge"], [[[0.2, 0.5]]])
    assert np.allclose(out["depth"], [[[0.3, 0.5]]])
    assert np.all(out["edge"] + out["depth"] <= 1.0 + 1e-6)


def test_class_rule_by_glob(clip):
    w = weight_map(clip, spec(weight=0.2, rules=[{"classes": ["ban*"], "value": 1.0}]))
    semantic = clip.frames[0].semantic
    banana = next(i for i, c in semantic.labels.items() if c == "banana")
    assert np.all(w[0][semantic.ids == banana] == 1.0)
    assert np.all(w[0][semantic.ids != banana] == pytest.approx(0.2))


def test_instance_rule_by_prim_path(clip):
    w = weight_map(clip, spec(weight=0.0, rules=[{"prim_paths": ["/World/*Can"], "value": 0.7}]))
    instance = clip.frames[1].instance
    cans = [i for i, p in instance.labels.items() if p.endswith("Can")]
    assert np.all(w[1][np.isin(instance.ids, cans)] == pytest.approx(0.7))
    assert np.all(w[1][~np.isin(instance.ids, cans)] == 0.0)


def test_keyframes_interpolate_linearly_and_hold_outside():
    assert np.allclose(keyframe_curve([0, 1, 2, 3, 4, 5], {1: 0.0, 3: 1.0}), [0, 0, 0.5, 1, 1, 1])


def test_keyframe_rule_multiplies_by_default(clip):
    w = weight_map(clip, spec(weight=0.5, rules=[{"keyframes": {0: 0.0, 3: 1.0}}]))
    assert np.allclose(w.mean(axis=(1, 2)), [0.0, 0.5 / 3, 1.0 / 3, 0.5])


def test_depth_band_with_feather():
    depth = np.array([[[0.5, 1.0, 2.0, 3.0, 3.5, np.inf]]], np.float32)
    assert np.allclose(depth_band(depth, 1.0, 3.0), [[[0, 1, 1, 1, 0, 0]]])
    assert np.allclose(depth_band(depth, 1.0, 3.0, feather=1.0), [[[0.5, 1, 1, 1, 0.5, 0]]])


def test_feathered_set_blends_towards_the_base():
    base = np.full((1, 1, 3), 0.2, np.float32)
    region = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    assert np.allclose(combine(base, 1.0, "set", region), [[[0.2, 0.6, 1.0]]])
    assert np.allclose(combine(base, 3.0, "max"), 3.0)


def test_mask_files_of_every_kind(tmp_path, clip):
    mask = np.zeros((4, 8, 8), np.float32)
    mask[:, :, 4:] = 1.0
    np.save(tmp_path / "m.npy", mask)
    from safetensors.numpy import save_file

    save_file({"mask": mask}, str(tmp_path / "m.safetensors"))
    (tmp_path / "pngs").mkdir()
    for t in range(4):
        write_png(tmp_path / "pngs" / f"mask_{t:04d}.png", mask[t])
    write_video(tmp_path / "m.mp4", np.repeat((mask[..., None] * 255).astype(np.uint8), 3, -1))
    for name in ("m.npy", "m.safetensors", "pngs", "m.mp4"):
        got = read_mask_array(tmp_path / name)
        assert got.shape == (4, 8, 8), name
        assert np.abs(got[:, 2:6, 1:3]).max() < 0.1 and got[:, 2:6, 5:7].min() > 0.9, name
    fitted = fit_mask(read_mask_array(tmp_path / "m.npy"), clip.frame_indices, (512, 512), tmp_path)
    assert fitted.shape == (4, 512, 512)
    w = weight_map(clip, spec(rules=[{"mask": str(tmp_path / "m.npy"), "value": 0.5}]))
    assert w[0, 10, 500] == pytest.approx(0.5) and w[0, 10, 10] == 0.0


def test_cosmos_transfer1_tensor_file(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.ones(1, 3, 4, 4) * 0.25, tmp_path / "edge_weights.pt")
    assert np.allclose(read_mask_array(tmp_path / "edge_weights.pt"), 0.25)
    # A pickled object is refused, not executed.
    torch.save({"not": "a tensor"}, tmp_path / "dict.pt")
    with pytest.raises(InputError, match=r"expected a tensor"):
        read_mask_array(tmp_path / "dict.pt")


def test_mask_too_short_for_the_clip(tmp_path, clip):
    np.save(tmp_path / "short.npy", np.ones((2, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"short.npy.*2 frames"):
        weight_map(clip, spec(rules=[{"mask": str(tmp_path / "short.npy")}]))


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj.npy"):
        read_mask_array(tmp_path / "obj.npy")


def test_rule_needing_segmentation_on_a_video_dataset(tmp_path):
    write_video(tmp_path / "cam_edge.mp4", np.zeros((3, 16, 16, 3), np.uint8))
    clip = open_dataset(tmp_path).clips()[0]
    with pytest.raises(InputError, match=r"controls.rules\[0\].*needs semantic"):
        weight_map(clip, spec(rules=[{"classes": ["car"], "value": 1}]))
