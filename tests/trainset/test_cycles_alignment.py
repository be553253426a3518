"""Cycles targets line up with the capture's controls on a procedural warehouse layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pxr import Usd

from bridge_core.capture.capture import capture_scene
from bridge_core.capture.scene import read_scene
from bridge_core.trainset.conditions import CONDITIONS
from bridge_core.trainset.cycles import class_of, render_layout
from bridge_core.trainset.layouts import CAMERA, CLASSES, write_layout

SEED = 3
FRAMES = 3  # the camera moves between frames: catches a time-code/frame offset
SIZE = (64, 64)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("layout") / "warehouse.usda"
    write_layout(path, SEED, FRAMES)
    return path


@pytest.fixture(scope="module")
def captured(layout, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("capture") / "controls"
    capture_scene(layout, [CAMERA], out, resolution=SIZE)
    return out


@pytest.fixture(scope="module")
def rendered(layout, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cycles") / "targets"
    render_layout(layout, SIZE, ["daylight", "night"], out, samples=4, seed=1)
    return out


def _top_level_classes(path: Path) -> set[str]:
    stage = Usd.Stage.Open(str(path))
    return {
        c for p in stage.GetPrimAtPath("/World").GetChildren() if (c := class_of(p.GetName(), []))
    }


def test_seeds_give_different_layouts(tmp_path):
    a, b = tmp_path / "a.usda", tmp_path / "b.usda"
    write_layout(a, 0, 2)
    write_layout(b, 1, 2)
    assert a.read_text() != b.read_text()


def test_every_class_appears(tmp_path):
    seen: set[str] = set()
    for seed in range(3):
        write_layout(tmp_path / f"{seed}.usda", seed, 1)
        seen |= _top_level_classes(tmp_path / f"{seed}.usda")
    assert seen == set(CLASSES)


def test_capture_reads_layout(layout, captured):
    assert set(read_scene(layout).classes) == set(CLASSES)
    labels = json.loads((captured / "semantic_segmentation_labels_0000.json").read_text())
    classes = {v["class"] for v in labels.values()} - {"BACKGROUND", "UNLABELLED"}
    assert {"floor", "shelf"} <= classes <= set(CLASSES)


def test_conditions_have_prompts():
    assert {"daylight", "night", "fog", "overcast"} <= set(CONDITIONS)
    assert all(c.prompt.endswith(".") and c.name == k for k, c in CONDITIONS.items())


def test_depth_matches_capture(captured, rendered):
    for t in range(FRAMES):
        cycles = np.load(rendered / f"depth_{t:04d}.npy")
        capture = np.load(captured / f"distance_to_image_plane_{t:04d}.npy")
        assert cycles.shape == capture.shape == SIZE[::-1]
        assert cycles.dtype == np.float32
        hit_cycles, hit_capture = np.isfinite(cycles), np.isfinite(capture)
        assert (hit_cycles == hit_capture).mean() >= 0.97
        both = hit_cycles & hit_capture
        error = np.abs(cycles[both] / capture[both] - 1.0)
        assert np.median(error) < 0.01
        assert (error < 0.03).mean() >= 0.95


def test_frames_written_and_night_is_darker(rendered):
    for t in range(FRAMES):
        luminance = {}
        for name in ("daylight", "night"):
            rgb = cv2.imread(str(rendered / name / f"rgb_{t:04d}.png"))
            assert rgb is not None and rgb.shape == (SIZE[1], SIZE[0], 3)
            luminance[name] = cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY).mean()
        assert luminance["night"] <= 0.8 * luminance["daylight"]
