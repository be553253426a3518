"""The demo: controls for every sample camera, random-model frames, refusal of a used workdir."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from bridge_core import demo
from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.errors import InputError

SAMPLE_SIZE = (54, 96)  # (H, W) of samples/datasets/warehouse_tiny
SAMPLE_CAMERAS = ("Replicator", "Replicator_01")


def _console() -> Console:
    return Console(record=True, width=200)


def _png(path: Path) -> np.ndarray:
    picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert picture is not None, path
    return picture


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[demo.DemoResult, str]:
    pytest.importorskip("transfer_model")
    import torch

    torch.set_num_threads(2)
    console = _console()
    result = demo.run_demo(tmp_path_factory.mktemp("demo") / "out", console)
    return result, console.export_text()


def _check_controls(result: demo.DemoResult) -> None:
    assert set(result.controls) == set(SAMPLE_CAMERAS)
    for folder in result.controls.values():
        assert folder.parent.parent == result.workdir / "controls"
        for name in CONTROL_NAMES:
            pictures = sorted((folder / name).glob(f"{name}_*.png"))
            assert len(pictures) == demo.CLIP_LENGTH
            assert _png(pictures[0]).shape == (*SAMPLE_SIZE, 3)
            assert (folder / f"{name}.mp4").is_file()
            assert _png(folder / "weights" / f"{name}_0000.png").shape == SAMPLE_SIZE
        assert (folder / "contact_sheet.png").is_file()


def test_writes_controls_and_generated_frames(ran) -> None:
    result, printed = ran
    _check_controls(result)
    assert set(result.generated) == set(demo.VARIATIONS)
    variations = []
    for folder in result.generated.values():
        frames = sorted(folder.glob("rgb_*.png"))
        assert [f.name for f in frames] == [f"rgb_{i:04d}.png" for i in range(5)]
        variations.append(np.stack([_png(f) for f in frames]))
        assert variations[-1].shape == (5, *SAMPLE_SIZE, 3)
    # Same seed, different prompt embeddings: the prompt reaches the frames.
    assert not np.array_equal(*variations)
    assert result.sheet == result.workdir / "generated" / "contact_sheet.png"
    assert _png(result.sheet).ndim == 3
    assert "RANDOM tiny model" in printed and "noise" in printed
    # Staging is moved into place: nothing is left beside the workdir.
    assert [p.name for p in result.workdir.parent.iterdir()] == ["out"]


def test_refuses_a_used_workdir(ran) -> None:
    result, _ = ran
    before = sorted(result.workdir.rglob("*"))
    with pytest.raises(InputError, match="not empty"):
        demo.run_demo(result.workdir, _console())
    assert sorted(result.workdir.rglob("*")) == before


def test_without_the_model_stops_after_controls(tmp_path, monkeypatch) -> None:
    # None in sys.modules makes ``import transfer_model`` raise ImportError.
    monkeypatch.setitem(sys.modules, "transfer_model", None)
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    console = _console()
    result = demo.run_demo(out, console, overwrite=True)
    _check_controls(result)
    assert result.generated == {} and result.sheet is None
    assert not (out / "generated").exists() and not (out / "stale").exists()
    assert "pip install -e '.[model]'" in console.export_text()


def test_needs_a_source_checkout(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "SAMPLE_DATASET", tmp_path / "missing")
    with pytest.raises(InputError, match="source checkout"):
        demo.run_demo(tmp_path / "out", _console())
    assert not (tmp_path / "out").exists()


def test_pad_to_multiple() -> None:
    t, h, w = 2, 5, 7
    rng = np.random.default_rng(0)
    video = rng.random((t, h, w, 3), dtype=np.float32)
    weights = np.full((t, h, w), 0.5, np.float32)
    padded = demo.pad_to_multiple(ControlStack({"edge": video}, {"edge": weights}), 4)
    assert padded.shape == (t, 8, 8)
    assert np.array_equal(padded.videos["edge"][:, :h, :w], video)
    assert np.array_equal(padded.videos["edge"][:, h:, :w], np.repeat(video[:, -1:], 3, axis=1))
    assert np.array_equal(padded.videos["edge"][:, :h, w:], np.repeat(video[:, :, -1:], 1, axis=2))
    assert np.array_equal(padded.weights["edge"][:, :h, :w], weights)
    assert not padded.weights["edge"][:, h:].any() and not padded.weights["edge"][:, :, w:].any()
    already = ControlStack({"edge": padded.videos["edge"]}, {"edge": padded.weights["edge"]})
    assert demo.pad_to_multiple(already, 4) is already
