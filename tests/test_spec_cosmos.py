"""Importing Cosmos-Transfer1 and Cosmos-Transfer2.5 spec files.

The real files under ../shared/realdata are read in place (never copied): each
either loads or fails naming the unsupported feature, as the table below says.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bridge_core.errors import SpecError, UnsupportedFeatureError
from bridge_core.spec import MaskRule, dump_job_spec, load_job_spec, load_job_specs
from bridge_core.spec.cosmos import detect_format

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
T1 = REALDATA / "cosmos-transfer1-assets"
T25 = REALDATA / "cosmos-transfer2.5-specs"


# Expected outcome per file (file names are unique across both folders):
#   ("ok", format, number of specs) | ("unsupported", keys named) | ("not-a-spec",)
OK_T1 = ("ok", "cosmos-transfer1", 1)
OK_T25 = ("ok", "cosmos-transfer2.5", 1)
T1_PREFIX = "inference_cosmos_transfer1_"
EXPECTED: dict[str, tuple[Any, ...]] = {
    # Cosmos-Transfer1 (the "inference_cosmos_transfer1_" prefix left out)
    "multi_control.json": OK_T1,
    "single_control_depth.json": OK_T1,
    "single_control_depth_short_prompt.json": OK_T1,
    "single_control_edge.json": OK_T1,
    "single_control_edge_short_prompt.json": OK_T1,
    "single_control_keypoint.json": ("unsupported", ["keypoint"]),
    "single_control_seg.json": OK_T1,
    "single_control_seg_short_prompt.json": OK_T1,
    "single_control_vis.json": OK_T1,
    "single_control_vis_short_prompt.json": OK_T1,
    "spatiotemporal_weights_auto.json": (
        "unsupported",
        ["vis.control_weight_prompt", "edge.control_weight_prompt"],
    ),
    "uniform_weights.json": OK_T1,
    "uniform_weights_auto.json": ("unsupported", ["seg.input_control_prompt"]),
    "multi_control_regional_prompt_video_mask.json": ("unsupported", ["regional_prompts"]),
    "single_control_regional_prompt.json": ("unsupported", ["regional_prompts"]),
    "single_control_regional_prompt_left_blue.json": ("unsupported", ["regional_prompts"]),
    "single_control_regional_prompt_right_blue.json": ("unsupported", ["regional_prompts"]),
    "single_control_segment_regional_prompt.json": ("unsupported", ["regional_prompts"]),
    "robot_spatiotemporal_weights.json": OK_T1,
    "inference_upscaler.json": ("unsupported", ["upscale"]),
    "example1_prompts.json": ("not-a-spec",),  # the example's prompt list
    "robot_sample_spec.json": OK_T1,
    "sample_av_hdmap_multiview_lvg_spec.json": ("unsupported", ["hdmap"]),
    "sample_av_hdmap_multiview_lvg_waymo_spec.json": ("unsupported", ["hdmap"]),
    "sample_av_hdmap_multiview_spec.json": ("unsupported", ["hdmap"]),
    "sample_av_hdmap_multiview_waymo_spec.json": ("unsupported", ["hdmap"]),
    "sample_av_hdmap_spec.json": ("unsupported", ["hdmap"]),
    "sample_av_lidar_multiview_lvg_spec.json": ("unsupported", ["lidar"]),
    "sample_av_lidar_multiview_spec.json": ("unsupported", ["lidar"]),
    "sample_av_multi_control_spec.json": ("unsupported", ["hdmap", "lidar"]),
    # Cosmos-Transfer2.5
    "car_depth_spec.json": OK_T25,
    "car_edge_spec.json": OK_T25,
    "car_multicontrol_spec.json": OK_T25,
    "car_seg_spec.json": OK_T25,
    "car_vis_spec.json": OK_T25,
    # Line 4 asks for a SAM2 mask from the text "cars . automobiles".
    "depth.jsonl": ("unsupported", ["depth.mask_prompt"]),
    "edge.jsonl": ("ok", "cosmos-transfer2.5", 2),
    "multicontrol.jsonl": ("ok", "cosmos-transfer2.5", 2),
    "robot_depth_spec.json": OK_T25,
}
# Replicator label files of the robot example's segmentation sequence: data, not specs.
LABEL_FILE = re.compile(r"^semantic_segmentation_labels_\d+\.json$")


def real_spec_files() -> list[str]:
    """Every JSON / JSONL file of the two folders, relative to REALDATA."""
    if not T1.is_dir() or not T25.is_dir():
        return []
    found = [*T1.glob("assets/**/*.json"), *T25.glob("assets/**/*.json*")]
    return sorted(str(p.relative_to(REALDATA)) for p in found)


def table_key(relative: str) -> str:
    return Path(relative).name.removeprefix(T1_PREFIX)


def expected_outcome(relative: str) -> tuple[Any, ...]:
    name = Path(relative).name
    return ("not-a-spec",) if LABEL_FILE.match(name) else EXPECTED[table_key(relative)]


def test_every_real_file_has_an_expectation() -> None:
    files = real_spec_files()
    labels = [f for f in files if LABEL_FILE.match(Path(f).name)]
    keys = [table_key(f) for f in files if f not in labels]
    assert len(keys) == len(set(keys)), "file names must stay unique for the table"
    assert sorted(keys) == sorted(EXPECTED)
    assert len(labels) == 100


@pytest.mark.parametrize("relative", real_spec_files())
def test_real_spec_file(relative: str, tmp_path: Path) -> None:
    path = REALDATA / relative
    outcome = expected_outcome(relative)
    if outcome[0] == "ok":
        loaded = load_job_specs(path)
        assert len(loaded) == outcome[2]
        for item in loaded:
            assert item.source_format == outcome[1]
            assert item.origin.startswith(path.name)
            # Converted specs are ordinary specs: they dump and load back unchanged.
            dumped = tmp_path / f"{item.spec.output.run_name}.yaml"
            dumped.write_text(dump_job_spec(item.spec))
            assert load_job_spec(dumped).spec == item.spec
    elif outcome[0] == "unsupported":
        with pytest.raises(UnsupportedFeatureError) as info:
            load_job_specs(path)
        message = str(info.value)
        assert str(path) in message and "not supported" in message
        for key in outcome[1]:
            assert key in message
        assert info.value.field in outcome[1]
    else:
        with pytest.raises(SpecError, match="not a job spec") as info:
            load_job_specs(path)
        assert not isinstance(info.value, UnsupportedFeatureError)


# --- what the real files convert to --------------------------------------------------


def test_t1_paths_found_from_the_repo_root() -> None:
    # "assets/example1_depth.mp4" is relative to the Cosmos repo root, one level up.
    path = T1 / "assets" / "inference_cosmos_transfer1_single_control_depth.json"
    loaded = load_job_spec(path)
    spec = loaded.spec
    assert spec.input.dataset == T1 / "assets" / "example1_input_video.mp4"
    assert spec.controls["depth"].source_path == T1 / "assets" / "example1_depth.mp4"
    assert loaded.missing_files == []
    variation = spec.variations[0]
    assert variation.prompt and variation.prompt.startswith("The video is set in a modern")
    assert spec.model.guidance == 5.0 and variation.seed == 1  # Transfer1's defaults
    assert spec.output.run_name == variation.name == path.stem


def test_t1_multi_control() -> None:
    loaded = load_job_spec(T1 / "assets" / "inference_cosmos_transfer1_multi_control.json")
    spec = loaded.spec
    assert {name: c.weight for name, c in spec.controls.items()} == {
        "edge": 0.7,
        "depth": 0.1,
        "blur": 0.3,
    }
    assert all(c.source == "auto" for c in spec.controls.values())
    # nurec2.mp4 is not among the assets; it is reported, not fatal.
    assert [p.name for p in loaded.missing_files] == ["nurec2.mp4"]
    assert any("depth has no control video" in note for note in loaded.notes)


def test_t1_weight_tensors_become_mask_rules() -> None:
    path = (
        T1
        / "assets/robot_augmentation_example/example1"
        / "inference_cosmos_transfer1_robot_spatiotemporal_weights.json"
    )
    loaded = load_job_spec(path)
    spec = loaded.spec
    assert set(spec.controls) == {"edge", "depth", "seg", "blur"}
    for name, control in spec.controls.items():
        (rule,) = control.rules
        assert isinstance(rule, MaskRule) and rule.op == "set" and rule.value == 1.0
        assert rule.mask.suffix == ".pt" and rule.mask.is_absolute()
        assert control.weight == 1.0, name
    assert spec.controls["seg"].source_path == path.parent / "segmentation.mp4"
    assert sorted(p.name for p in loaded.missing_files) == [
        "depth_weights.pt",
        "edge_weights.pt",
        "seg_weights.pt",
        "vis_weights.pt",
    ]


def test_t1_sigma_max_inside_a_control() -> None:
    loaded = load_job_spec(T1 / "assets" / "robot_sample_spec.json")
    assert loaded.spec.model.sigma_max == 70.0
    # Missing files still resolve where the repository keeps them.
    assert loaded.missing_files == [
        T1 / "assets" / "robot_sample_input.mp4",
        T1 / "assets" / "robot_sample_seg.mp4",
    ]
    assert any("seg.sigma_max" in note for note in loaded.notes)


def test_t25_paths_relative_to_spec_and_prompt_file() -> None:
    path = T25 / "assets/car_example/multicontrol/car_multicontrol_spec.json"
    loaded = load_job_spec(path)
    spec = loaded.spec
    example = T25 / "assets" / "car_example"
    assert spec.input.dataset == example / "car_input.mp4"
    assert spec.variations[0].prompt_file == example / "car_prompt.txt"
    assert spec.controls["depth"].source_path == example / "depth" / "car_depth.mp4"
    assert spec.controls["blur"].source == "auto"
    assert spec.model.guidance == 3.0 and spec.variations[0].seed == 2025
    assert spec.output.run_name == "car_multicontrol"
    # The control videos are Git LFS content that was not obtainable: listed as missing.
    assert example / "car_prompt.txt" in loaded.missing_files


def test_t25_top_level_control_weight_and_ignored_keys() -> None:
    loaded = load_job_spec(T25 / "assets/car_example/vis/car_vis_spec.json")
    assert loaded.spec.controls["blur"].weight == 1.0
    # Written relative to the repository root: found there, though the file is missing.
    assert loaded.spec.input.dataset == T25 / "assets" / "car_example" / "car_input.mp4"
    assert any(note.startswith("ignored output_dir") for note in loaded.notes)
    assert loaded.spec.output.run_name == "car_vis_spec"  # no name: from the file name


def test_t25_jsonl_lines() -> None:
    loaded = load_job_specs(T25 / "assets" / "multicontrol.jsonl")
    assert [item.origin for item in loaded] == [
        "multicontrol.jsonl line 1",
        "multicontrol.jsonl line 2",
    ]
    assert [item.spec.output.run_name for item in loaded] == [
        "robot_multicontrol",
        "car_multicontrol",
    ]
    assert loaded[0].spec.controls["seg"].source_path == (
        T25 / "assets" / "robot_example" / "seg" / "robot_seg.mp4"
    )


def test_t25_unsupported_line_is_named() -> None:
    with pytest.raises(UnsupportedFeatureError) as info:
        load_job_specs(T25 / "assets" / "depth.jsonl")
    assert "line 4:" in str(info.value)
    assert "GroundingDINO + SAM2" in str(info.value) and "classes" in str(info.value)


# --- synthetic specs: conversions and their errors -----------------------------------


def write_json(folder: Path, data: Any, name: str = "spec.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def t1(**extra: Any) -> dict[str, Any]:
    return {
        "prompt": "a street",
        "input_video_path": "in.mp4",
        "edge": {"control_weight": 0.5},
        **extra,
    }


def t25(**extra: Any) -> dict[str, Any]:
    return {"name": "job", "prompt": "a street", "video_path": "in.mp4", "edge": {}, **extra}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (t1(), "cosmos-transfer1"),
        ({"edge": {"control_weight": 1}}, "cosmos-transfer1"),
        ({"prompt": "x", "vis": {"input_control": "v.mp4"}}, "cosmos-transfer1"),
        (t25(), "cosmos-transfer2.5"),
        ({"prompt": "x", "depth": {"control_path": "d.mp4"}}, "cosmos-transfer2.5"),
        ({"name": "a", "model": "edge/distilled", "prompt": "x"}, "cosmos-transfer2.5"),
        ({"input": {}, "prompt": "x"}, "bridge"),
        ({"model": {"id": "tiny"}}, "bridge"),
        ({"variations": []}, "bridge"),
        ({"prompt1": "x"}, None),
        ({"(0, 0, 0, 0)": {"class": "BACKGROUND"}}, None),
        ([1, 2], None),
    ],
)
def test_detect_format(data: Any, expected: str | None) -> None:
    assert detect_format(data) == expected


def test_t1_mapping(tmp_path: Path) -> None:
    data = t1(
        negative_prompt="cartoon",
        seed=7,
        guidance=7,
        num_steps=20,
        sigma_max="80",
        canny_threshold="low",
        blur_strength="very_high",
        num_input_frames=1,
        vis={"control_weight": "0.25"},
        fps=30,
        offload_text_encoder_model=True,
    )
    data["edge"]["ckpt_path"] = "checkpoints/edge.pt"
    loaded = load_job_spec(write_json(tmp_path, data))
    spec = loaded.spec
    assert (spec.controls["edge"].preset, spec.controls["blur"].preset) == ("low", "very_high")
    assert spec.controls["blur"].weight == 0.25
    variation = spec.variations[0]
    assert (variation.negative_prompt, variation.seed) == ("cartoon", 7)
    model = spec.model
    assert (model.guidance, model.num_steps, model.sigma_max, model.num_conditional_frames) == (
        7.0,
        20,
        80.0,
        1,
    )
    assert spec.input.dataset == tmp_path / "in.mp4"
    ignored = {note.split(":")[0] for note in loaded.notes if note.startswith("ignored")}
    assert ignored == {
        "ignored fps",
        "ignored offload_text_encoder_model",
        "ignored edge.ckpt_path",
    }


def test_t1_control_weight_defaults_to_half(tmp_path: Path) -> None:
    loaded = load_job_spec(write_json(tmp_path, t1(edge={})))
    assert loaded.spec.controls["edge"].weight == 0.5


def test_t1_without_input_video_reads_the_control_video(tmp_path: Path) -> None:
    data = {"prompt": "x", "input_video_path": "", "depth": {"input_control": "d.mp4"}}
    loaded = load_job_spec(write_json(tmp_path, data))
    assert loaded.spec.input.dataset == tmp_path / "d.mp4"
    assert any("no input video" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        (t1(save_video_as="x"), "save_video_as", "unknown Cosmos-Transfer1 key"),
        (t1(negative_promt="x"), "negative_promt", "did you mean 'negative_prompt'?"),
        (t1(edge={"weight": 1}), "edge.weight", "unknown Cosmos-Transfer1 control key"),
        (t1(edge={"input_control": 5}), "edge.input_control", "expected a path"),
        (t1(edge={"control_weight": "heavy"}), "edge.control_weight", "expected a number"),
        (t1(edge="on"), "edge", "expected an object"),
        (t1(prompt=""), "prompt", "no prompt"),
        ({"prompt": "x", "vis": {}}, "input_video_path", "no input video"),
        (t1(edge={"control_weight": -1}), "controls.edge.weight", "after conversion from"),
    ],
)
def test_t1_errors(tmp_path: Path, data: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        load_job_specs(write_json(tmp_path, data))
    assert not isinstance(info.value, UnsupportedFeatureError)
    assert info.value.field == field
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (t1(edge={"input_control": ["front.mp4", "rear.mp4"]}), "edge.input_control"),
        (t1(batch_input_path="prompts.jsonl"), "batch_input_path"),
        (t1(keypoint={"control_weight": 1}, regional_prompts=[]), "keypoint"),
        (t25(image_context_path="style.png"), "image_context_path"),
        (t25(seg={"control_prompt": "car . tree"}), "seg.control_prompt"),
        (t25(lidar={}), "lidar"),
    ],
)
def test_unsupported_features_named(tmp_path: Path, data: dict[str, Any], field: str) -> None:
    with pytest.raises(UnsupportedFeatureError) as info:
        load_job_specs(write_json(tmp_path, data))
    assert info.value.field == field
    assert field in str(info.value)


def test_t25_mapping(tmp_path: Path) -> None:
    data = t25(
        prompt_path="ignored.txt",
        negative_prompt="blurry",
        seed=5,
        guidance=6,
        num_steps=12,
        sigma_max="150",
        num_video_frames_per_chunk=61,
        num_conditional_frames=2,
        max_frames=40,
        control_weight=0.4,
        resolution="480",
        model="edge/distilled",
        edge={"preset_edge_threshold": "high", "mask_path": "masks/edge.mp4"},
        vis={"preset_blur_strength": "low", "control_weight": 0.9},
        seg={"control_path": "seg.mp4", "control_prompt": "car"},
    )
    loaded = load_job_spec(write_json(tmp_path, data))
    spec = loaded.spec
    edge = spec.controls["edge"]
    assert (edge.preset, edge.weight) == ("high", 0.4)
    (rule,) = edge.rules
    assert isinstance(rule, MaskRule)
    assert (rule.mask, rule.op) == (tmp_path / "masks" / "edge.mp4", "multiply")
    assert (spec.controls["blur"].preset, spec.controls["blur"].weight) == ("low", 0.9)
    assert spec.controls["seg"].source_path == tmp_path / "seg.mp4"
    assert spec.input.frames == (0, 40)
    model = spec.model
    assert (model.guidance, model.num_steps, model.sigma_max) == (6.0, 12, 150.0)
    assert (model.frames_per_chunk, model.num_conditional_frames) == (61, 2)
    variation = spec.variations[0]
    assert (variation.prompt, variation.prompt_file, variation.seed) == ("a street", None, 5)
    assert any(note.startswith("ignored prompt_path") for note in loaded.notes)
    assert any(note.startswith("ignored resolution") for note in loaded.notes)
    assert any(note.startswith("ignored model") for note in loaded.notes)
    assert any(note.startswith("ignored seg.control_prompt") for note in loaded.notes)


@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        (t25(max_frame=3), "max_frame", "unknown Cosmos-Transfer2.5 key"),
        (t25(edge={"mask": "m.mp4"}), "edge.mask", "unknown Cosmos-Transfer2.5 control key"),
        (t25(depth={"preset_edge_threshold": "low"}), "depth.preset_edge_threshold", "edge"),
        (t25(video_path=None), "video_path", "no input video"),
        (t25(prompt=None), "prompt", "no prompt"),
        (t25(name="../up"), "name", "would escape the output folder"),
        (t25(name=7), "name", "expected a name"),
    ],
)
def test_t25_errors(tmp_path: Path, data: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        load_job_specs(write_json(tmp_path, data))
    assert info.value.field == field
    assert needle in str(info.value)


def test_t25_jsonl_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(t25()) + "\n" + json.dumps(t25()) + "\n")
    with pytest.raises(SpecError, match="uses run name 'job' again"):
        load_job_specs(path)


def test_t25_jsonl_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(t25()) + "\n{not json\n")
    with pytest.raises(SpecError, match=r"line 2: not valid JSON \(column 2\)"):
        load_job_specs(path)
