"""Fixtures for the run loop: copies of the real datasets, the tiny model kept small."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from run_helpers import TRANSFER1_ASSETS, YCB, CappedModel

from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.spec.models import ModelSpec


@pytest.fixture(autouse=True)
def _quiet_machine(monkeypatch, tmp_path) -> None:
    """One torch thread (the suite runs two workers on two cores: more threads only
    contend); the prompt-embedding cache inside the test's folder."""
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_resolved(tmp_path_factory) -> ResolvedModel:
    """The "tiny" model as ``--model tiny`` resolves it, its prompt cache in a temp folder."""
    resolved = resolve_model(ModelSpec(id="tiny"))
    resolved.model.prompt_cache.folder = tmp_path_factory.mktemp("prompt-cache")
    return resolved


@pytest.fixture
def small_model(tiny_resolved) -> ResolvedModel:
    """The tiny model behind :class:`CappedModel` (a fresh call counter per test)."""
    return replace(tiny_resolved, model=CappedModel(tiny_resolved.model))


@pytest.fixture
def ycb(tmp_path) -> Path:
    """A copy of the real YCB BasicWriter dataset (3 render products, 512x512)."""
    return Path(shutil.copytree(YCB, tmp_path / "ycb"))


@pytest.fixture
def transfer1(tmp_path) -> Path:
    """A copy of the Cosmos-Transfer1 example control videos (640x480, 121 frames)."""
    return Path(shutil.copytree(TRANSFER1_ASSETS, tmp_path / "transfer1"))
