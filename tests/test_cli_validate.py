"""`cosmos-bridge validate` as a user meets it: own specs, Cosmos specs, the schema."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REALDATA, REPO, TRANSFER1_ASSETS


def test_validate_prints_the_normalised_spec(run_cli):
    result = run_cli("validate", REPO / "samples/specs/warehouse.yaml")
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout and "variations:" in result.stdout
    assert "night_sodium" in result.stdout


def test_validate_converts_a_cosmos_transfer1_spec(run_cli):
    spec = TRANSFER1_ASSETS / "inference_cosmos_transfer1_uniform_weights.json"
    result = run_cli("validate", spec)
    assert result.exit_code == 0, result.stderr
    assert "cosmos-transfer1" in result.stdout
    for control in ("edge:", "depth:", "seg:", "blur:"):
        assert control in result.stdout


def test_validate_jsonl_lists_every_job(run_cli):
    result = run_cli("validate", REALDATA / "cosmos-transfer2.5-specs/assets/multicontrol.jsonl")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("valid") == 2


def test_unsupported_feature_is_named(run_cli):
    result = run_cli(
        "validate", TRANSFER1_ASSETS / "inference_cosmos_transfer1_single_control_keypoint.json"
    )
    assert result.exit_code == 2
    assert "keypoint" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_field_is_named(run_cli, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "input: {dataset: data}\ncontrols: {edge: {wieght: 0.5}}\n"
        "variations: [{name: a, prompt: p}]\n"
    )
    result = run_cli("validate", spec)
    assert result.exit_code == 2
    assert "wieght" in result.stderr and "job.yaml" in result.stderr


@pytest.mark.parametrize(
    ("controls", "model", "field"),
    [
        ("{edge: {weight: .inf}}", "{}", "weight"),
        ("{edge: {weight: .nan}}", "{}", "weight"),
        ("{edge: {weight: 1}}", "{guidance: .inf}", "guidance"),
    ],
)
def test_infinite_or_nan_numbers_are_refused(run_cli, tmp_path, controls, model, field):
    """ge=0 alone admits .inf; such a weight or guidance made a run of black frames."""
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"input: {{dataset: data}}\ncontrols: {controls}\nmodel: {model}\n"
        "variations: [{name: a, prompt: p}]\n"
    )
    result = run_cli("validate", spec)
    assert result.exit_code == 2, result.stdout
    assert field in result.stderr and "finite" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema(run_cli):
    result = run_cli("validate", "--schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"input", "controls", "variations"} <= set(schema["properties"])
