"""Helpers for the run-loop tests: where the real samples are, the tiny model kept small,
the starter spec as a user edits it, and file hashes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import yaml

from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.protocol import ModelRequirements
from bridge_core.run.starter import write_starter_spec
from bridge_core.spec.load import load_job_spec
from bridge_core.spec.models import JobSpec

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
YCB = REALDATA / "replicator-basicwriter-ycb"
TRANSFER1_ASSETS = REALDATA / "cosmos-transfer1-assets" / "assets"
# The tiny model takes up to 256x256; told 64, the loop resizes the 512x512 YCB and
# 640x480 Cosmos frames down for it and back, and each clip takes a fraction of a second.
TEST_MAX_SIDE = 64


class CappedModel:
    """The tiny model, reporting a smaller maximum resolution (the run loop's resize path)."""

    def __init__(self, model, max_side: int = TEST_MAX_SIDE):
        self.model = model
        self.max_side = max_side
        self.calls = 0

    @property
    def requirements(self) -> ModelRequirements:
        return replace(self.model.requirements, max_resolution=(self.max_side, self.max_side))

    def generate(self, controls, prompt, negative_prompt, seed, settings):
        self.calls += 1
        return self.model.generate(controls, prompt, negative_prompt, seed, settings)


class InterruptingModel(CappedModel):
    """Raises KeyboardInterrupt (as Ctrl-C would) on its ``after + 1``-th generate call."""

    def __init__(self, model, after: int):
        super().__init__(model)
        self.after = after

    def generate(self, *args):
        if self.calls >= self.after:
            raise KeyboardInterrupt
        return super().generate(*args)


def starter(dataset: Path, **edits) -> JobSpec:
    """``cosmos-bridge init``'s spec for ``dataset`` with 1 step and ``edits`` (section ->
    fields) applied, as a user edits the YAML. The quality gate is off unless ``edits``
    has a quality section: the tiny model's frames are noise, which the gate rejects."""
    path = write_starter_spec(dataset, dataset.parent / f"{dataset.name}.yaml", num_steps=1)
    data = yaml.safe_load(path.read_text())
    data["quality"]["enabled"] = "quality" in edits
    for section, fields in edits.items():
        data[section].update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_job_spec(path).spec


def file_hashes(root: Path, skip_runs: bool = True) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (links followed), outputs skipped."""
    hashes = {}
    for parent, dirs, names in os.walk(root):
        if skip_runs and RUNS_FOLDER in dirs:
            dirs.remove(RUNS_FOLDER)
        for name in names:
            path = Path(parent, name)
            hashes[path.relative_to(root).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return hashes
