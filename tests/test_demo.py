"""The demo: sample clip copied, starter spec, the real run loop with the trained default
model under each lighting condition, refusal of a used workdir, and what happens without
the model extra."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from rich.console import Console

from bridge_core import demo
from bridge_core.datasets.detect import open_dataset
from bridge_core.errors import InputError
from bridge_core.outputs import MARKER
from bridge_core.spec.load import load_job_spec
from bridge_core.trainset.conditions import CONDITIONS


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
    assert result.dataset == result.workdir / "warehouse_demo"
    assert load_job_spec(result.spec).spec.model.id == "default"
    assert result.run_dir == result.dataset / "cosmos_transfer" / demo.RUN_NAME
    assert list(result.variations) == list(CONDITIONS)
    for folder in result.variations.values():
        out = open_dataset(folder)
        assert set(out.cameras) == set(source.cameras)
        for name, camera in out.cameras.items():
            assert [f.index for f in camera.frames] == [f.index for f in source.camera(name).frames]
            frame = camera.frames[0]
            assert frame.rgb.shape[:2] == source.camera(name).frames[0].size
            assert frame.label_files.keys() == source.camera(name).frames[0].label_files.keys()
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "complete" and not record["model"]["random_weights"]
    assert list((result.run_dir / "report").rglob("contact_sheet.png"))
    assert "small CPU model" in printed and "Edge F1" in printed and "RANDOM" not in printed


def _frames(folder) -> np.ndarray:
    """A variation's generated frames [T, H, W, 3] as float32 (it has one camera)."""
    (camera,) = open_dataset(folder).cameras.values()
    return np.stack([f.rgb[..., :3] for f in camera.frames]).astype(np.float32)


def test_the_prompt_sets_the_light(ran) -> None:
    """The trained model follows its prompts: night is far darker than daylight, and
    every condition gives a visibly different clip of the same controls."""
    result, _ = ran
    frames = {name: _frames(folder) for name, folder in result.variations.items()}
    luma = {
        name: float((f @ np.array([0.2126, 0.7152, 0.0722])).mean()) for name, f in frames.items()
    }
    assert luma["night"] < 0.8 * luma["daylight"], luma
    names = list(frames)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(frames[a] - frames[b]).mean() > 3.0, (a, b)


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
    (out / MARKER).write_text("an earlier demo\n")
    console = _console()
    result = demo.run_demo(out, console, overwrite=True)
    assert result.run_dir is None and result.variations == {}
    assert load_job_spec(result.spec).spec.input.dataset == result.dataset
    assert not (result.dataset / "cosmos_transfer").exists() and not (out / "stale").exists()
    printed = console.export_text()
    assert "pip install -e '.[model]'" in printed and "cosmos-bridge run" in printed


def test_overwrite_never_deletes_a_folder_the_demo_did_not_write(tmp_path) -> None:
    home = tmp_path / "home"
    (home / "thesis").mkdir(parents=True)
    (home / "thesis" / "draft.tex").write_text("years of work")
    with pytest.raises(InputError, match="deletes only folders cosmos-bridge wrote"):
        demo.run_demo(home, _console(), overwrite=True)
    assert (home / "thesis" / "draft.tex").read_text() == "years of work"
    assert sorted(p.name for p in home.iterdir()) == ["thesis"]


def test_needs_a_source_checkout(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "SAMPLE_DATASET", tmp_path / "missing")
    with pytest.raises(InputError, match="source checkout"):
        demo.run_demo(tmp_path / "out", _console())
    assert not (tmp_path / "out").exists()
