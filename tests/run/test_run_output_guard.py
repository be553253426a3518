"""A run writes only inside its run folder: symbolic links in the dataset (from an archive,
a shared folder, an attacker) cannot send frames, labels or reports anywhere else."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml
from run_helpers import YCB, file_hashes

from bridge_core.run import models
from bridge_core.run.layout import RUNS_FOLDER


@pytest.fixture
def job(run_cli, ycb, tmp_path, small_model, monkeypatch):
    """(spec path, the dataset copy, another user's dataset beside it) with the tiny model."""
    monkeypatch.setattr(models, "resolve_model", lambda spec, model_id=None: small_model)
    spec = tmp_path / "job.yaml"
    assert run_cli("init", ycb, "-o", spec).exit_code == 0
    data = yaml.safe_load(spec.read_text())
    data["model"]["num_steps"] = 1
    data["input"]["cameras"] = ["Replicator_03"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    other = shutil.copytree(YCB, tmp_path / "someone_elses")
    return spec, ycb, other


def _run(run_cli, spec):
    return run_cli("run", spec, "--frames", "0:1")


@pytest.mark.parametrize(
    "linked",
    [
        RUNS_FOLDER,  # the dataset's whole output folder
        f"{RUNS_FOLDER}/first_run",  # the run folder
        f"{RUNS_FOLDER}/first_run/sunny",  # one variation folder
        f"{RUNS_FOLDER}/first_run/report",  # the report folder
    ],
)
def test_a_link_out_of_the_run_folder_is_refused_and_nothing_lands_there(
    run_cli, job, linked
) -> None:
    spec, dataset, other = job
    # Pointed where a run would overwrite another dataset's frames and labels.
    target = other if linked.endswith("sunny") else other / "landing"
    target.mkdir(exist_ok=True)
    (dataset / linked).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, dataset / linked)
    before = file_hashes(other, skip_runs=False)
    inputs = file_hashes(dataset)

    result = _run(run_cli, spec)

    assert result.exit_code == 2, result.stderr
    assert "symbolic link" in result.stderr and str(dataset / linked) in result.stderr
    assert "Traceback" not in result.stderr
    assert file_hashes(other, skip_runs=False) == before
    assert file_hashes(dataset) == inputs


def test_a_link_that_stays_inside_the_dataset_is_followed(run_cli, job) -> None:
    spec, dataset, _ = job
    (dataset / "generated").mkdir()
    os.symlink(dataset / "generated", dataset / RUNS_FOLDER)
    result = _run(run_cli, spec)
    assert result.exit_code == 0, result.stderr
    frames = sorted((dataset / "generated" / "first_run").rglob("rgb_0000.png"))
    assert [f.relative_to(dataset / "generated" / "first_run").parts[0] for f in frames] == [
        "overcast_dusk",
        "sunny",
    ]


def test_a_manifest_that_links_elsewhere_is_refused_untouched(run_cli, job) -> None:
    spec, dataset, other = job
    run_dir = dataset / RUNS_FOLDER / "first_run"
    run_dir.mkdir(parents=True)
    victim = other / "metadata.txt"
    before = victim.read_bytes()
    os.symlink(victim, run_dir / "manifest.jsonl")
    result = _run(run_cli, spec)
    assert result.exit_code == 2 and "manifest.jsonl" in result.stderr
    assert "symbolic link" in result.stderr
    assert victim.read_bytes() == before


def test_a_full_disk_says_so_in_one_line_and_the_run_resumes(run_cli, job, monkeypatch) -> None:
    import errno

    from bridge_core import outputs

    spec, dataset, _ = job
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", full)
    result = _run(run_cli, spec)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "no space left on the device" in result.stderr
    assert str(dataset / RUNS_FOLDER / "first_run" / "sunny") in result.stderr  # the file
    assert "run again" in result.stderr

    monkeypatch.setattr(outputs.os, "replace", real_replace)
    again = _run(run_cli, spec)
    assert again.exit_code == 0, again.stderr
    assert "2 frame(s) generated, 0 already done" in again.stdout
