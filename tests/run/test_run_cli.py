"""``cosmos-bridge init`` and ``cosmos-bridge run``: the commands, their errors, nothing
written on bad input."""

from __future__ import annotations

import yaml
from run_helpers import file_hashes

from bridge_core.run import models
from bridge_core.run.files import RunLock
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.spec.load import load_job_spec


def _init(run_cli, dataset, tmp_path, steps: int = 1):
    spec = tmp_path / "job.yaml"
    result = run_cli("init", dataset, "-o", spec)
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(spec.read_text())
    data["model"]["num_steps"] = steps
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def test_init_writes_a_commented_spec_that_validates(run_cli, ycb, tmp_path) -> None:
    spec = tmp_path / "ycb.yaml"
    assert run_cli("init", ycb, "-o", spec).exit_code == 0
    text = spec.read_text()
    job = load_job_spec(spec).spec
    assert job.input.dataset == ycb
    assert job.input.cameras == ["Replicator_03", "Replicator_04", "Replicator_05"]
    assert job.input.frames == (0, 4)
    assert list(job.controls) == ["edge", "depth", "seg", "blur"]
    assert len(job.variations) == 2 and job.model.id == "default"
    assert "meat_can" in text and "soup_can" in text  # the dataset's classes
    assert "small CPU model" in text and text.count("\n#") >= 3
    # The gate's thresholds are commented YAML: uncommented, they are the defaults.
    spec.write_text(text.replace("  # min_", "  min_").replace("  # max_", "  max_"))
    assert {"min_edge_f1", "max_temporal_ratio"} <= set(yaml.safe_load(spec.read_text())["quality"])
    assert load_job_spec(spec).spec.quality == job.quality
    assert job.quality.min_edge_f1 is None
    again = run_cli("init", ycb, "-o", spec)
    assert again.exit_code == 2 and "exists already" in again.stderr
    assert run_cli("init", ycb, "-o", spec, "--force").exit_code == 0


def test_run_prints_progress_metrics_and_where_outputs_are(
    run_cli, ycb, tmp_path, small_model, monkeypatch
) -> None:
    monkeypatch.setattr(models, "resolve_model", lambda spec, model_id=None: small_model)
    spec = _init(run_cli, ycb, tmp_path)
    result = run_cli("run", spec, "--model", "tiny", "--frames", "0:2")
    assert result.exit_code == 0, result.stderr
    assert "RANDOM" in result.stdout
    assert "Edge F1" in result.stdout and "Blur SSIM" in result.stdout
    assert "8 frame(s) generated, 0 already done" in result.stdout
    assert str(ycb / RUNS_FOLDER / "first_run") in result.stdout.replace("\n", "")
    again = run_cli("run", spec, "--frames", "0:2")
    assert "0 frame(s) generated, 8 already done" in again.stdout


def test_bad_spec_or_input_gives_one_line_and_writes_nothing(
    run_cli, ycb, tmp_path, small_model, monkeypatch
) -> None:
    monkeypatch.setattr(models, "resolve_model", lambda spec, model_id=None: small_model)
    before = file_hashes(tmp_path, skip_runs=False)
    spec = _init(run_cli, ycb, tmp_path)
    data = yaml.safe_load(spec.read_text())

    def fails(edit: dict, *args: str, expect: str) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump({**data, **edit}, sort_keys=False))
        result = run_cli("run", bad, *args)
        assert result.exit_code == 2, result.stdout
        assert result.stderr.strip().count("\n") == 0 and expect in result.stderr
        assert not (ycb / RUNS_FOLDER).exists()
        bad.unlink()

    fails({"variations": [{"name": "x"}]}, expect="give exactly one of prompt and prompt_file")
    fails({"input": {**data["input"], "dataset": "missing"}}, expect="no such file or folder")
    fails({"input": {**data["input"], "cameras": ["Nope"]}}, expect="no camera 'Nope'")
    fails({}, "--frames", "9:3", expect="start must be less than stop")
    fails({}, "--frames", "50:60", expect="no frames selected")
    fails({"controls": {"depth": {"source": str(tmp_path / "nothing.mp4")}}}, expect="nothing.mp4")
    fails({"variations": [{"name": "report", "prompt": "p"}]}, expect="report folder")
    after = file_hashes(tmp_path, skip_runs=False)
    assert {k: v for k, v in after.items() if k != "job.yaml"} == before


def test_a_second_run_is_refused_with_one_line(
    run_cli, ycb, tmp_path, small_model, monkeypatch
) -> None:
    monkeypatch.setattr(models, "resolve_model", lambda spec, model_id=None: small_model)
    spec = _init(run_cli, ycb, tmp_path)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    run_dir.mkdir(parents=True)
    with RunLock(run_dir):
        result = run_cli("run", spec)
    assert result.exit_code == 2
    assert "another cosmos-bridge run" in result.stderr and "is writing to" in result.stderr
    assert small_model.model.calls == 0
