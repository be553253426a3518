"""Loading: local folders and hub revisions, safetensors only, offline mode, access errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import Mock

import numpy as np
import pytest
import torch
from conftest import SETTINGS, stack
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

from transfer_model import (
    BRANCH_REVISION,
    PIPELINE_REVISION,
    CheckpointFormatError,
    CosmosTransferModel,
    ModelAccessError,
    PassThroughChecker,
    load_transfer_model,
)
from transfer_model.cosmos import loading


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny.save_pretrained(folder)
    return folder


def test_dtype_policy() -> None:
    assert loading.default_dtype(torch.device("cuda")) == torch.bfloat16
    assert loading.default_dtype(torch.device("cpu")) == torch.float32


def test_save_and_load_round_trip(saved, tiny, embeds) -> None:
    files = [p for p in saved.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix not in (".json",)]
    assert weights and all(p.suffix == ".safetensors" for p in weights)

    loaded = load_transfer_model(saved, controls=("edge", "depth"), device="cpu")
    assert loaded.origin == "project"
    assert isinstance(loaded.safety_checker, PassThroughChecker)
    assert loaded.requirements == tiny.requirements
    controls = stack({"edge": 0.6, "depth": 0.4}, 5)
    assert np.array_equal(
        loaded.generate(controls, *embeds, 9, SETTINGS),
        tiny.generate(controls, *embeds, 9, SETTINGS),
    )


def test_pickle_checkpoint_is_refused(tmp_path, saved) -> None:
    branch = tmp_path / "edge"
    branch.mkdir()
    (branch / "config.json").write_text((saved / "controlnet" / "edge" / "config.json").read_text())
    (branch / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointFormatError, match=r"diffusion_pytorch_model\.bin.*safetensors"):
        load_transfer_model(
            saved, controls=("edge",), branch_sources={"edge": branch}, device="cpu"
        )


class _FakeGuardrail:
    """Stands in for cosmos_guardrail.CosmosSafetyChecker."""

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray:
        return frames


def test_hub_revisions_and_safetensors_patterns(monkeypatch, saved, tmp_path) -> None:
    """The pipeline and each branch come from the revisions DESIGN.md names."""
    hub = tmp_path / "pipeline"  # the hub's layout: no controlnet/, no marker
    for part in ("transformer", "vae", "scheduler"):
        shutil.copytree(saved / part, hub / part)
    calls = []
    monkeypatch.setitem(
        sys.modules, "cosmos_guardrail", SimpleNamespace(CosmosSafetyChecker=_FakeGuardrail)
    )

    def fake_snapshot(repo_id, revision, allow_patterns, local_files_only):
        calls.append((repo_id, revision, allow_patterns, local_files_only))
        if revision == PIPELINE_REVISION:
            return str(hub)
        return str(saved / "controlnet" / revision.rsplit("/", 1)[1])

    monkeypatch.setattr(loading, "snapshot_download", fake_snapshot)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = load_transfer_model(
        "nvidia/Cosmos-Transfer2.5-2B", controls=("edge", "depth"), device="cpu"
    )
    # NVIDIA's weights: the guardrail is on.
    assert model.origin == "nvidia"
    assert isinstance(model.safety_checker, _FakeGuardrail)
    revisions = [c[1] for c in calls]
    assert revisions[0] == PIPELINE_REVISION
    assert revisions[1:3] == [BRANCH_REVISION.format(control=c) for c in ("edge", "depth")]
    for _, _, patterns, offline in calls:
        assert not offline
        assert not any(p.endswith((".bin", ".pt", ".ckpt")) for p in patterns)
        assert not any("text_encoder" in p for p in patterns)


def test_nvidia_weights_without_guardrail_package(monkeypatch, saved) -> None:
    monkeypatch.setattr(loading, "snapshot_download", lambda *a, **k: str(saved))
    (saved / "transfer_model.json").rename(saved / "marker.bak")
    monkeypatch.setitem(sys.modules, "cosmos_guardrail", None)
    try:
        with pytest.raises(ImportError, match=r"cosmos-transfer-bridge\[guardrail\]"):
            load_transfer_model(saved, controls=("edge",), device="cpu")
    finally:
        (saved / "marker.bak").rename(saved / "transfer_model.json")


def test_gated_repository_is_explained(monkeypatch) -> None:
    def gated(*args, **kwargs):
        raise GatedRepoError("Access to model is restricted.", response=Mock())

    monkeypatch.setattr(loading, "snapshot_download", gated)
    with pytest.raises(ModelAccessError) as info:
        load_transfer_model("nvidia/Cosmos-Transfer2.5-2B", device="cpu")
    message = str(info.value)
    assert "gated" in message and "license" in message and "HF_TOKEN" in message
    assert message.count(". ") == 0  # one sentence


def test_offline_mode_is_honoured(monkeypatch) -> None:
    seen = {}

    def offline(*args, local_files_only, **kwargs):
        seen["local_files_only"] = local_files_only
        raise LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(loading, "snapshot_download", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelAccessError, match="HF_HUB_OFFLINE is set"):
        load_transfer_model("nvidia/Cosmos-Transfer2.5-2B", device="cpu")
    assert seen["local_files_only"] is True


def test_from_preset_is_a_project_model() -> None:
    model = CosmosTransferModel.from_preset("tiny", ("edge",))
    assert model.origin == "project" and isinstance(model.safety_checker, PassThroughChecker)
