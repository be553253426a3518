"""bridge_core.live without Kit: data dicts, the writer's spec, the panel state, the model cache."""

from __future__ import annotations

import numpy as np
import pytest
from live_data import FRAMES, RENDER_PRODUCTS, annotator_data

from bridge_core.datasets.files import read_rgb
from bridge_core.errors import InputError, SpecError
from bridge_core.live.augmenter import LiveAugmenter
from bridge_core.live.data import parse_data
from bridge_core.live.models import ModelCache
from bridge_core.live.panel_state import PanelState
from bridge_core.live.spec import live_spec
from bridge_core.spec.models import ModelSpec

VARIATIONS = [{"name": "fog", "prompt": "fog"}]


SEG = {"data": np.zeros((4, 8), np.uint32), "info": {"idToLabels": {"(0, 0, 0, 0)": "BACKGROUND"}}}


def test_parse_data_single_and_several_render_products():
    one = parse_data({"rgb": 1, "normals": 2, "trigger_outputs": {}, "reference_time": (0, 1)})
    assert one.flat and one.views == {"": {"rgb": 1, "normals": 2}}
    several = parse_data(
        {
            "rgb-Left": 1,
            "instance_id_segmentation_fast-Left": SEG,
            "rgb-Right": 3,
            "bounding_box_3d_fast-Right": 4,  # not written by the live writer
            "rp_Left": {"resolution": [8, 4], "camera": "/World/L"},
        }
    )
    assert not several.flat
    assert several.views == {
        "Left": {"rgb": 1, "instance_id_segmentation": SEG},
        "Right": {"rgb": 3},
    }
    assert several.resolutions == {"Left": (8, 4)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trigger_outputs": {}}, "none of the annotators"),
        ({"rgb": 1, "rgb-Right": 2}, "mixes keys"),
        ({"semantic_segmentation": {"data": 1}}, "idToLabels"),
    ],
)
def test_parse_data_refuses(data, message):
    with pytest.raises(InputError, match=message):
        parse_data(data)


def test_write_refuses_non_colorized_segmentation_and_shapes_flat_buffers(tmp_path, recording):
    spec = live_spec(tmp_path / "cap", controls={"edge": {}}, variations=VARIATIONS)
    with LiveAugmenter(spec, recording[1]) as live:
        data = annotator_data("Replicator", 0)
        data["semantic_segmentation"] = {
            "data": np.zeros((54, 96), np.uint32),
            "info": {"idToLabels": {"0": {"class": "BACKGROUND"}}},
        }
        with pytest.raises(InputError, match="must be colorized"):
            live.write(data)
        data = annotator_data("Replicator", 0)
        rgb = data["rgb"]
        data["rgb"] = rgb.reshape(-1)  # a one-off get_data may come flat
        assert live.write(data) == 0
    assert np.array_equal(read_rgb(tmp_path / "cap" / "rgb_0000.png"), rgb[..., :3])


def test_layout_cannot_change_mid_capture(tmp_path, recording, flat_frames, multi_frames):
    spec = live_spec(tmp_path / "cap", controls={"edge": {}}, variations=VARIATIONS)
    live = LiveAugmenter(spec, recording[1])
    live.write(flat_frames[0])
    with pytest.raises(InputError, match="render products changed"):
        live.write(multi_frames[1])
    live.close()
    with pytest.raises(InputError, match="finished"):
        live.write(flat_frames[1])


def test_cancel_stops_generation_and_keeps_ground_truth(tmp_path, recording, flat_frames):
    spec = live_spec(tmp_path / "cap", controls={"edge": {}}, variations=VARIATIONS)
    live = LiveAugmenter(spec, recording[1])
    live.cancel()
    for data in flat_frames:
        live.write(data)
    result = live.close()
    assert result.cancelled and result.frames_generated == 0 and result.frames_captured == FRAMES
    assert (tmp_path / "cap" / f"rgb_{FRAMES - 1:04d}.png").is_file()


def test_live_spec_takes_the_job_spec_fields(tmp_path):
    spec = live_spec(
        tmp_path,
        {"input": {"dataset": "ignored", "frames": "0:4"}, "controls": {"vis": {}}},
        variations=VARIATIONS,
        model={"id": "tiny"},
        cameras=["Replicator"],
        clip_length=7,
    )
    assert spec.input.dataset == tmp_path.resolve() and spec.input.frames is None
    assert list(spec.controls) == ["blur"] and spec.model.id == "tiny"
    assert (spec.input.cameras, spec.input.clip_length) == (["Replicator"], 7)
    with pytest.raises(SpecError, match="unknown writer parameter"):
        live_spec(tmp_path, controls={"edge": {}}, variations=VARIATIONS, colour="red")
    with pytest.raises(SpecError, match="output_dir"):
        live_spec(None, controls={"edge": {}}, variations=VARIATIONS)


def test_panel_state_refusals_name_the_field():
    state = PanelState()
    assert not state.set_control_preset("depth", "high")
    assert "edge and blur only" in state.error
    assert not state.set_control_weight("lidar", 0.5)
    assert "unknown control" in state.error
    assert not state.remove_variation(5)
    assert state.set_num_steps(3) and state.error is None
    assert state.add_variation() and state.add_variation()
    assert [v.name for v in state.spec.variations][1:] == ["variation_1", "variation_2"]


def test_model_cache_loads_once_per_model(recording):
    loads = []
    cache = ModelCache(lambda spec: loads.append(spec.id) or recording[1])
    cache.get(ModelSpec(id="tiny", num_steps=2))
    cache.get(ModelSpec(id="tiny", num_steps=9))  # sampling settings do not reload
    cache.get(ModelSpec(id="other"))
    assert loads == ["tiny", "other"]


def test_model_notes_say_when_torch_is_installed_twice(tmp_path, monkeypatch, recording):
    # A standalone Isaac Sim's own torch, and the one pip downloaded into site-packages.
    folders = [tmp_path / "exts/omni.isaac.ml_archive/pip_prebundle", tmp_path / "site-packages"]
    for folder in folders:
        info = folder / "torch-2.7.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.7.0\n")
    for folder in reversed(folders):
        monkeypatch.syspath_prepend(str(folder))
    model = ModelCache(lambda _spec: recording[1]).get(ModelSpec(id="a"))
    (note,) = model.notes
    assert "torch is installed" in note and "Troubleshooting" in note
    assert note.index(str(folders[0])) < note.index(str(folders[1]))  # import order


def test_ground_truth_is_not_written_through_a_link_that_leads_out(
    tmp_path, recording, multi_frames
):
    """The capture folder's rgb folder links to another dataset: the writer refuses it
    and that dataset stays as it was."""
    elsewhere = tmp_path / "someone_elses_rgb"
    elsewhere.mkdir()
    root = tmp_path / "cap"
    (root / RENDER_PRODUCTS[0]).mkdir(parents=True)
    (root / RENDER_PRODUCTS[0] / "rgb").symlink_to(elsewhere)
    spec = live_spec(root, controls={"edge": {}}, variations=VARIATIONS)
    live = LiveAugmenter(spec, recording[1])
    with pytest.raises(InputError, match="symbolic link"):
        for data in multi_frames:
            live.write(data)
        live.close()
    assert list(elsewhere.iterdir()) == []
