"""The demo: sample dataset copied, starter spec, the real run loop with the default
(random) model, refusal of a used workdir, and what happens without the model extra."""

from __future__ import annotations

import json
import sys

import pytest
from rich.console import Console

from bridge_core import demo
from bridge_core.datasets.detect import open_dataset
from bridge_core.errors import InputError
from bridge_core.spec.load import load_job_spec


def _console() -> Console:
    return Console(record=True, width=200)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[demo.DemoResult, str]:
    pytest.importorskip("transfer_model")
    import torch

    torch.set_num_threads(1)  # two test workers share two cores
    mp = pytest.MonkeyPatch()
    # The stand-in text encoder's embeddings are cached: keep them out of the home folder.
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    console = _console()
    try:
        result = demo.run_demo(tmp_path_factory.mktemp("demo") / "out", console)
    finally:
        mp.undo()
    return result, console.export_text()


def test_runs_the_sample_dataset_end_to_end(ran) -> None:
    result, printed = ran
    source = open_dataset(demo.SAMPLE_DATASET)
    assert result.dataset == result.workdir / "warehouse_tiny"
    assert load_job_spec(result.spec).spec.model.id == "default"
    assert result.run_dir == result.dataset / "cosmos_transfer" / demo.RUN_NAME
    assert len(result.variations) == 2
    for folder in result.variations.values():
        out = open_dataset(folder)
        assert set(out.cameras) == set(source.cameras)
        for name, camera in out.cameras.items():
            assert [f.index for f in camera.frames] == [f.index for f in source.camera(name).frames]
            frame = camera.frames[0]
            assert frame.rgb.shape[:2] == source.camera(name).frames[0].size
            assert frame.label_files.keys() == source.camera(name).frames[0].label_files.keys()
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["model"]["random_weights"]
    assert list((result.run_dir / "report").rglob("contact_sheet.png"))
    assert "RANDOM tiny model" in printed and "noise" in printed and "Edge F1" in printed


def test_refuses_a_used_workdir(ran) -> None:
    result, _ = ran
    before = sorted(result.workdir.rglob("*"))
    with pytest.raises(InputError, match="not empty"):
        demo.run_demo(result.workdir, _console())
    assert sorted(result.workdir.rglob("*")) == before


def test_without_the_model_stops_after_the_spec(tmp_path, monkeypatch) -> None:
    # None in sys.modules makes ``import transfer_model`` raise ImportError.
    monkeypatch.setitem(sys.modules, "transfer_model", None)
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    console = _console()
    result = demo.run_demo(out, console, overwrite=True)
    assert result.run_dir is None and result.variations == {}
    assert load_job_spec(result.spec).spec.input.dataset == result.dataset
    assert not (result.dataset / "cosmos_transfer").exists() and not (out / "stale").exists()
    printed = console.export_text()
    assert "pip install -e '.[model]'" in printed and "cosmos-bridge run" in printed


def test_needs_a_source_checkout(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "SAMPLE_DATASET", tmp_path / "missing")
    with pytest.raises(InputError, match="source checkout"):
        demo.run_demo(tmp_path / "out", _console())
    assert not (tmp_path / "out").exists()
