"""The job spec: own YAML/JSON specs, validation errors, paths, schema and dumps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import bridge_core.spec as spec_pkg
from bridge_core.errors import SpecError, UnsupportedFeatureError
from bridge_core.spec import (
    ClassRule,
    DepthBandRule,
    InstanceRule,
    JobSpec,
    KeyframeRule,
    MaskRule,
    dump_job_spec,
    job_spec_schema,
    load_job_spec,
    load_job_specs,
    parse_job_spec,
)

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "specs" / "warehouse.yaml"


def minimal(**overrides: Any) -> dict[str, Any]:
    """The smallest valid spec as data, with top-level keys replaced by ``overrides``."""
    data: dict[str, Any] = {
        "input": {"dataset": "data"},
        "controls": {"edge": {}},
        "variations": [{"name": "fog", "prompt": "a foggy warehouse"}],
    }
    data.update(overrides)
    return data


def with_control(name: str, **control: Any) -> dict[str, Any]:
    return minimal(controls={name: control})


def write_yaml(folder: Path, data: Any, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_job_spec(data)
    return info.value


def test_public_names_are_pinned() -> None:
    assert sorted(spec_pkg.__all__) == [
        "ClassRule",
        "ControlName",
        "ControlSpec",
        "DepthBandRule",
        "InputSpec",
        "InstanceRule",
        "JobSpec",
        "KeyframeRule",
        "LoadedSpec",
        "MaskRule",
        "ModelSpec",
        "OutputSpec",
        "Preset",
        "RuleOp",
        "SourceFormat",
        "Variation",
        "WeightRule",
        "dump_job_spec",
        "job_spec_schema",
        "load_job_spec",
        "load_job_specs",
        "parse_job_spec",
    ]


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_job_spec(minimal())
    assert spec.version == 1
    assert spec.input.frames is None and spec.input.cameras is None
    edge = spec.controls["edge"]
    assert (edge.enabled, edge.source, edge.preset, edge.weight, edge.rules) == (
        True,
        "auto",
        None,
        1.0,
        [],
    )
    assert spec.variations[0].seed == 0
    assert spec.model.id == "default" and spec.model.num_steps == 35
    assert spec.model.guidance == 3.0 and spec.model.num_conditional_frames == 1
    assert spec.output.run_name == "run"


def test_yaml_and_json_load_alike(tmp_path: Path) -> None:
    yaml_spec = load_job_spec(write_yaml(tmp_path, minimal()))
    json_path = tmp_path / "job.json"
    json_path.write_text(json.dumps(minimal()))
    json_spec = load_job_spec(json_path)
    assert yaml_spec.spec == json_spec.spec
    assert yaml_spec.source_format == json_spec.source_format == "bridge"
    assert yaml_spec.origin == "job.yaml" and yaml_spec.notes == []


# --- unknown fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "hint"),
    [
        (minimal(variatons=[]), "variatons", "variations"),
        (with_control("edge", presett="low"), "controls.edge.presett", "preset"),
        (minimal(input={"dataset": "d", "frame": "0:4"}), "input.frame", "frames"),
        (minimal(model={"steps": 4}), "model.steps", None),
        (
            with_control("seg", rules=[{"classes": ["a"], "value": 1, "feathr": 1}]),
            "controls.seg.rules.0.feathr",
            "feather",
        ),
    ],
)
def test_unknown_field_is_named(data: dict[str, Any], field: str, hint: str | None) -> None:
    error = error_of(data)
    assert error.field == field
    assert "unknown field" in str(error)
    if hint:
        assert f"did you mean {hint!r}" in str(error)


def test_unknown_field_error_names_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, with_control("edge", wieght=1))
    with pytest.raises(SpecError) as info:
        load_job_specs(path)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: controls.edge.wieght: unknown field")


# --- folder names ----------------------------------------------------------------------

ESCAPING = ["../x", "a/b", "/abs", "..", ".", "a\\b", "C:x", "~/x"]


@pytest.mark.parametrize("name", ESCAPING)
def test_escaping_run_name_rejected(name: str) -> None:
    error = error_of(minimal(output={"run_name": name}))
    assert error.field == "output.run_name"
    assert "would escape the output folder" in str(error)


@pytest.mark.parametrize("name", ESCAPING)
def test_escaping_variation_name_rejected(name: str) -> None:
    error = error_of(minimal(variations=[{"name": name, "prompt": "p"}]))
    assert error.field == "variations.0.name"
    assert "would escape the output folder" in str(error)


@pytest.mark.parametrize("name", ["fog lights", "", "n\u00e4cht", "a*"])
def test_name_must_be_a_plain_folder_name(name: str) -> None:
    error = error_of(minimal(output={"run_name": name}))
    assert error.field == "output.run_name"


@pytest.mark.parametrize("name", ["fog", "night_sodium", "v1.2-b", "a..b"])
def test_plain_names_accepted(name: str) -> None:
    spec = parse_job_spec(minimal(variations=[{"name": name, "prompt": "p"}]))
    assert spec.variations[0].name == name


def test_variation_names_unique_ignoring_case() -> None:
    error = error_of(
        minimal(variations=[{"name": "Fog", "prompt": "a"}, {"name": "fog", "prompt": "b"}])
    )
    assert error.field == "variations"
    assert "unique" in str(error)


def test_at_least_one_variation() -> None:
    assert error_of(minimal(variations=[])).field == "variations"


# --- prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variation",
    [{"name": "a"}, {"name": "a", "prompt": "p", "prompt_file": "p.txt"}],
)
def test_prompt_xor_prompt_file(variation: dict[str, Any]) -> None:
    error = error_of(minimal(variations=[variation]))
    assert error.field == "variations.0"
    assert "exactly one of prompt and prompt_file" in str(error)


def test_missing_prompt_file_is_listed_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = write_yaml(tmp_path, minimal(variations=[{"name": "a", "prompt_file": "gone.txt"}]))
    loaded = load_job_spec(path)
    assert loaded.spec.variations[0].prompt_file == tmp_path / "gone.txt"
    assert loaded.missing_files == [tmp_path / "gone.txt"]


# --- frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ("0:10", (0, 10)),
        (":10", (0, 10)),
        ("5:", (5, None)),
        (" 2 : 8 ", (2, 8)),
        ([2, 8], (2, 8)),
        ([None, 4], (0, 4)),
        ([3, None], (3, None)),
        (None, None),
    ],
)
def test_frames_parsed(frames: Any, expected: tuple[int, int | None] | None) -> None:
    spec = parse_job_spec(minimal(input={"dataset": "d", "frames": frames}))
    assert spec.input.frames == expected


@pytest.mark.parametrize(
    ("frames", "needle"),
    [
        ("5:2", "start must be less than stop"),
        ("5:5", "start must be less than stop"),
        ("a:b", "integers"),
        ("5", "START:STOP"),
        ([-1, 3], ">= 0"),
        ([1, 2, 3], "START:STOP"),
        ([1.5, 3], "integers"),
        (7, "START:STOP"),
    ],
)
def test_bad_frames_rejected(frames: Any, needle: str) -> None:
    error = error_of(minimal(input={"dataset": "d", "frames": frames}))
    assert error.field == "input.frames"
    assert needle in str(error)


def test_unquoted_yaml_frame_range_is_not_base_60(tmp_path: Path) -> None:
    # YAML 1.1 reads 10:20 as 620; the spec loader must read the range as written.
    path = tmp_path / "job.yaml"
    path.write_text(
        "input: {dataset: d, frames: 10:20}\n"
        "controls: {edge: {}}\n"
        "variations: [{name: a, prompt: p, seed: 1_0}]\n"
        "model: {guidance: 2.5, sigma_max: 1e3}\n"
    )
    spec = load_job_spec(path).spec
    assert spec.input.frames == (10, 20)
    assert spec.variations[0].seed == 10
    assert spec.model.guidance == 2.5


# --- controls --------------------------------------------------------------------------


@pytest.mark.parametrize("control", ["depth", "seg"])
def test_preset_rejected_where_it_means_nothing(control: str) -> None:
    error = error_of(with_control(control, preset="low"))
    assert error.field == f"controls.{control}.preset"
    assert "edge and blur only" in str(error)


@pytest.mark.parametrize("control", ["edge", "blur"])
def test_preset_accepted_for_edge_and_blur(control: str) -> None:
    assert parse_job_spec(with_control(control, preset="very_high")).controls[control].preset


def test_unknown_preset_rejected() -> None:
    assert error_of(with_control("edge", preset="extreme")).field == "controls.edge.preset"


def test_vis_is_blur() -> None:
    spec = parse_job_spec(minimal(controls={"vis": {"weight": 0.3}, "edge": {}}))
    assert list(spec.controls) == ["edge", "blur"]
    assert spec.controls["blur"].weight == 0.3


def test_vis_and_blur_together_rejected() -> None:
    error = error_of(minimal(controls={"vis": {}, "blur": {}}))
    assert "'vis' and 'blur' name the same control" in str(error)


def test_unknown_control_named() -> None:
    error = error_of(minimal(controls={"normals": {}}))
    assert error.field == "controls.normals"
    assert "unknown control" in str(error)


def test_unsupported_control_in_own_spec() -> None:
    with pytest.raises(UnsupportedFeatureError, match="keypoint"):
        parse_job_spec(minimal(controls={"keypoint": {}}))


@pytest.mark.parametrize(
    ("control", "source"),
    [("edge", "rgb"), ("edge", "geometry"), ("edge", "rgb+geometry"), ("seg", "instance")],
)
def test_source_keywords(control: str, source: str) -> None:
    spec = parse_job_spec(with_control(control, source=source))
    assert spec.controls[control].source == source
    assert spec.controls[control].source_path is None


@pytest.mark.parametrize(("control", "source"), [("depth", "rgb"), ("seg", "geometry")])
def test_source_keyword_of_another_control_rejected(control: str, source: str) -> None:
    error = error_of(with_control(control, source=source))
    assert error.field == f"controls.{control}.source"
    assert f"'./{source}'" in str(error)


def test_needs_an_enabled_control() -> None:
    assert error_of(with_control("edge", enabled=False)).field == "controls"


def test_negative_weight_rejected() -> None:
    assert error_of(with_control("edge", weight=-0.1)).field == "controls.edge.weight"


# --- weight rules ----------------------------------------------------------------------


def test_each_rule_kind_discriminated(tmp_path: Path) -> None:
    rules = [
        {"classes": ["forklift*"], "value": 1.0},
        {"prim_paths": ["/World/*"], "value": 0.5, "op": "max"},
        {"keyframes": {0: 0.0, 10: 1.0}},
        {"depth": [0.5, 8], "value": 0.8, "feather": 1},
        {"mask": "weights.pt"},
    ]
    spec = parse_job_spec(with_control("depth", rules=rules), base_dir=tmp_path)
    got = spec.controls["depth"].rules
    assert [type(r) for r in got] == [
        ClassRule,
        InstanceRule,
        KeyframeRule,
        DepthBandRule,
        MaskRule,
    ]
    # Defaults per rule kind: keyframes scale what came before, the others set.
    assert [r.op for r in got] == ["set", "max", "multiply", "set", "set"]
    assert got[2].keyframes == {0: 0.0, 10: 1.0}
    assert got[3].depth == (0.5, 8.0) and got[3].feather == 1.0
    assert got[4].mask == tmp_path / "weights.pt" and got[4].value == 1.0


@pytest.mark.parametrize(
    "rule",
    [
        {"value": 1.0},
        {"classes": ["a"], "depth": [0, 1], "value": 1.0},
        "classes",
        {},
    ],
)
def test_rule_without_exactly_one_key_gives_one_error(rule: Any) -> None:
    error = error_of(with_control("seg", rules=[rule]))
    assert error.field == "controls.seg.rules.0"
    assert "exactly one of the keys classes, prim_paths, keyframes, depth, mask" in str(error)
    assert "also" not in str(error)


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"classes": ["a"], "value": -1}, "controls.seg.rules.0.value"),
        ({"classes": [], "value": 1}, "controls.seg.rules.0.classes"),
        ({"classes": ["a"], "value": 1, "op": "divide"}, "controls.seg.rules.0.op"),
        ({"keyframes": {}}, "controls.seg.rules.0.keyframes"),
        ({"keyframes": {"-1": 1.0}}, "controls.seg.rules.0.keyframes.-1"),
        ({"keyframes": {"1": -1.0}}, "controls.seg.rules.0.keyframes.1"),
        ({"depth": [5, 1], "value": 1}, "controls.seg.rules.0.depth"),
        ({"depth": [1, 5], "value": 1, "feather": -1}, "controls.seg.rules.0.feather"),
        ({"mask": "mask.png"}, "controls.seg.rules.0.mask"),
        ({"prim_paths": ["/a"]}, "controls.seg.rules.0.value"),
    ],
)
def test_bad_rule_names_its_field(rule: dict[str, Any], field: str) -> None:
    error = error_of(with_control("seg", rules=[rule]))
    # One error at the rule's own field, not one per kind of rule the union knows.
    assert error.field == field
    assert "also" not in str(error)


def test_mask_folder_and_tensor_suffixes_accepted(tmp_path: Path) -> None:
    (tmp_path / "pngs.v2").mkdir()
    rules = [{"mask": m} for m in ("pngs", "pngs.v2", "m.mp4", "m.npy", "m.safetensors", "m.pt")]
    spec = parse_job_spec(with_control("blur", rules=rules), base_dir=tmp_path)
    assert len(spec.controls["blur"].rules) == 6


# --- model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"device": "gpu"}, "model.device"),
        ({"device": "cuda:x"}, "model.device"),
        ({"dtype": "int8"}, "model.dtype"),
        ({"num_steps": 0}, "model.num_steps"),
        ({"guidance": -1}, "model.guidance"),
        ({"num_conditional_frames": 3}, "model.num_conditional_frames"),
        ({"memory": "swap"}, "model.memory"),
        ({"frames_per_chunk": 0}, "model.frames_per_chunk"),
        ({"guidance": 0, "guide_controls": True}, "model.guide_controls"),
    ],
)
def test_bad_model_options(model: dict[str, Any], field: str) -> None:
    assert error_of(minimal(model=model)).field == field


def test_model_options_accepted() -> None:
    model = {"id": "tiny", "device": "cuda:1", "dtype": "float32", "memory": "group_offload"}
    spec = parse_job_spec(minimal(model=model))
    assert spec.model.device == "cuda:1" and spec.model.memory == "group_offload"


def test_version_must_be_1() -> None:
    assert error_of(minimal(version=2)).field == "version"


# --- paths --------------------------------------------------------------------------------


def test_relative_paths_resolve_against_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tmp_path / "project" / "specs"
    specs.mkdir(parents=True)
    data = minimal(
        input={"dataset": "../datasets/tiny"},
        controls={
            "edge": {"source": "rgb"},
            "depth": {"source": "controls/depth.mp4", "rules": [{"mask": "m/w.npy"}]},
            "seg": {"source": "/abs/seg.mp4"},
        },
        variations=[{"name": "a", "prompt_file": "prompts/a.txt"}],
    )
    path = write_yaml(specs, data)
    monkeypatch.chdir(tmp_path)  # the working folder must not matter
    loaded = load_job_spec(path)
    spec = loaded.spec
    assert spec.input.dataset == tmp_path / "project" / "datasets" / "tiny"
    assert spec.controls["edge"].source == "rgb"
    assert spec.controls["depth"].source_path == specs / "controls" / "depth.mp4"
    assert spec.controls["depth"].rules[0].mask == specs / "m" / "w.npy"
    assert spec.controls["seg"].source == "/abs/seg.mp4"
    assert spec.variations[0].prompt_file == specs / "prompts" / "a.txt"
    assert loaded.missing_files == [
        spec.input.dataset,
        specs / "controls" / "depth.mp4",
        specs / "m" / "w.npy",
        Path("/abs/seg.mp4"),
        specs / "prompts" / "a.txt",
    ]


def test_relative_spec_path_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_yaml(tmp_path, minimal())
    monkeypatch.chdir(tmp_path)
    assert load_job_spec("job.yaml").spec.input.dataset == tmp_path / "data"


def test_paths_kept_as_written_without_base_dir() -> None:
    assert parse_job_spec(minimal()).input.dataset == Path("data")


# --- files -------------------------------------------------------------------------------


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_job_specs(tmp_path / "nope.yaml")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text("x = 1")
    with pytest.raises(SpecError, match="not a spec file"):
        load_job_specs(path)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("input:\n  dataset: d\ncontrols: [\n")
    with pytest.raises(SpecError, match=r"not valid YAML \(line \d+"):
        load_job_specs(path)


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "input": {"dataset": "d"},\n  "controls": {,}\n}')
    with pytest.raises(SpecError, match=r"not valid JSON \(line 3 column"):
        load_job_specs(path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("job.yaml", "input: {dataset: a}\ninput: {dataset: b}\n"),
        ("job.json", '{"input": {"dataset": "a"}, "input": {"dataset": "b"}}'),
    ],
)
def test_duplicate_keys_rejected(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError, match="duplicate key 'input'"):
        load_job_specs(path)


@pytest.mark.parametrize("text", ["just text\n", "[1, 2]\n", "{}\n", "{label: BACKGROUND}\n"])
def test_not_a_spec(tmp_path: Path, text: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="not a job spec"):
        load_job_specs(path)


def test_jsonl_of_own_specs(tmp_path: Path) -> None:
    first = minimal(output={"run_name": "one"})
    second = minimal(output={"run_name": "two"})
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(second) + "\n")
    loaded = load_job_specs(path)
    assert [item.origin for item in loaded] == ["jobs.jsonl line 1", "jobs.jsonl line 3"]
    with pytest.raises(SpecError, match="holds 2 specs"):
        load_job_spec(path)


def test_jsonl_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    bad = minimal(output={"run_name": "../up"})
    path.write_text(json.dumps(minimal()) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(SpecError) as info:
        load_job_specs(path)
    assert info.value.field == "output.run_name"
    assert "line 2:" in str(info.value)


def test_jsonl_run_names_must_differ(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(minimal()) + "\n" + json.dumps(minimal()) + "\n")
    with pytest.raises(SpecError, match=r"jobs\.jsonl line 2 uses run name 'run' again"):
        load_job_specs(path)


# --- schema and dumps --------------------------------------------------------------------


def test_schema() -> None:
    schema = job_spec_schema()
    json.dumps(schema)  # serialisable as is
    assert set(schema["required"]) == {"input", "controls", "variations"}
    assert schema["additionalProperties"] is False
    rules = schema["$defs"]["ControlSpec"]["properties"]["rules"]["items"]
    refs = {option["$ref"].rsplit("/", 1)[-1] for option in rules["oneOf"]}
    assert refs == {"ClassRule", "InstanceRule", "KeyframeRule", "DepthBandRule", "MaskRule"}
    assert schema["$defs"]["ControlSpec"]["properties"]["preset"]["anyOf"][0]["enum"] == [
        "very_low",
        "low",
        "medium",
        "high",
        "very_high",
    ]


def round_trip(spec: JobSpec, folder: Path) -> JobSpec:
    path = folder / "dumped.yaml"
    path.write_text(dump_job_spec(spec))
    return load_job_spec(path).spec


def test_sample_spec_uses_every_feature() -> None:
    loaded = load_job_spec(SAMPLE)
    spec = loaded.spec
    assert set(spec.controls) == {"edge", "depth", "seg", "blur"}
    kinds = {type(rule) for control in spec.controls.values() for rule in control.rules}
    assert {ClassRule, InstanceRule, KeyframeRule, DepthBandRule} <= kinds
    assert [v.name for v in spec.variations] == ["fog", "night_sodium", "daylight"]
    assert spec.variations[2].prompt_file is not None and spec.variations[2].prompt_file.is_file()
    assert spec.input.dataset == SAMPLE.parents[1] / "datasets" / "warehouse_tiny"
    assert all(p == spec.input.dataset for p in loaded.missing_files)


def test_dump_round_trip_of_sample(tmp_path: Path) -> None:
    spec = load_job_spec(SAMPLE).spec
    assert round_trip(spec, tmp_path) == spec


def test_dump_round_trip_of_everything(tmp_path: Path) -> None:
    data = minimal(
        input={"dataset": "d", "cameras": ["Rp_1"], "frames": "10:20", "clip_length": 9},
        controls={
            "vis": {"preset": "high", "rules": [{"mask": "w.pt", "value": 0.5, "op": "min"}]},
            "edge": {"source": "edges/", "rules": [{"keyframes": {0: 1, 5: 0.25}, "op": "add"}]},
        },
        variations=[
            {"name": "a", "prompt": "p: with colon", "negative_prompt": "n", "seed": -3},
            {"name": "b", "prompt_file": "b.txt"},
        ],
        model={"revision": "diffusers/general", "sigma_max": 80, "frames_per_chunk": 93},
    )
    spec = parse_job_spec(data, base_dir=tmp_path)
    assert round_trip(spec, tmp_path) == spec


def test_dump_is_readable(tmp_path: Path) -> None:
    text = dump_job_spec(parse_job_spec(with_control("vis", rules=[{"keyframes": {3: 1}}])))
    assert "null" not in text and "vis" not in text
    assert "blur:" in text and "3: 1.0" in text
    assert text.index("version") < text.index("input") < text.index("controls")
