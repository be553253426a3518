"""The quality gate in a run, as a user meets it: a broken clip (noise, another clip's
frames) is rejected and retried, then kept under rejected/ and never in its variation's
folder; a good clip passes; a rerun does nothing; changed thresholds judge the kept
frames again and move them, without generating."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from run_helpers import file_hashes, starter

import bridge_core
from bridge_core.controls.stack import CONTROL_NAMES
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB
from bridge_core.quality.gate import attempt_seed
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job
from bridge_core.run.models import ResolvedModel
from bridge_core.run.protocol import ModelRequirements
from bridge_core.spec.models import QualitySpec

SAMPLES = Path(bridge_core.__file__).resolve().parents[1] / "samples" / "datasets"
# The demo's clip: one camera, 9 frames at 128x128 (one clip of the stand-in's chunk).
DEMO = SAMPLES / "warehouse_demo"
GOOD, BROKEN = "sunny", "overcast_dusk"  # the starter spec's two variations


class StandIn:
    """A model that draws, per prompt and seed, the clip's own frames dimmed (a perfect
    model relighting the scene), uniform noise, or another clip's frames."""

    def __init__(self, clip_rgb: np.ndarray, other_rgb: np.ndarray, draw):
        self.clip_rgb, self.other_rgb, self.draw = clip_rgb, other_rgb, draw
        self.seeds: list[tuple[str, int]] = []

    @property
    def requirements(self) -> ModelRequirements:
        return ModelRequirements(16, 9, CONTROL_NAMES)

    def generate(self, controls, prompt, negative_prompt, seed, settings):
        self.seeds.append((prompt, seed))
        kind = self.draw(prompt, seed)
        if kind == "noise":
            rng = np.random.default_rng(seed)
            return rng.integers(0, 256, self.clip_rgb.shape, dtype=np.uint8)
        if kind == "other":
            return self.other_rgb
        return (self.clip_rgb * 0.8).astype(np.uint8)


@pytest.fixture
def demo(tmp_path) -> Path:
    return Path(shutil.copytree(DEMO, tmp_path / "warehouse_demo"))


def _model(demo: Path, draw) -> ResolvedModel:
    (clip,) = open_dataset(demo).clips()
    rgb = clip.stack(RGB)[..., :3].copy()
    # Another clip: the other sample scene's first camera, at this clip's size.
    (other,) = open_dataset(SAMPLES / "warehouse_tiny").clips(["Replicator"])
    frames = [cv2.resize(f[..., :3], rgb.shape[2:0:-1]) for f in other.stack(RGB)]
    other_rgb = np.stack([frames[min(t, len(frames) - 1)] for t in range(len(rgb))])
    return ResolvedModel(StandIn(rgb, other_rgb, draw), "stand-in")


def _good_or(kind: str):
    """The GOOD variation drawn well, the BROKEN one as ``kind``."""
    return lambda prompt, seed: "good" if "sunlight" in prompt else kind


def _spec(demo: Path, **quality):
    """The starter spec with the gate on and ``quality`` set, written afresh each time."""
    (demo.parent / f"{demo.name}.yaml").unlink(missing_ok=True)
    return starter(demo, quality=quality)


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "manifest.jsonl").read_text().splitlines()]


def _tries(run_dir: Path, variation: str) -> list[dict]:
    return [x for x in _lines(run_dir) if "attempt" in x and x["variation"] == variation]


def _frames(run_dir: Path, variation: str) -> list[str]:
    return [
        x["output"] for x in _lines(run_dir) if x.get("variation") == variation and "output" in x
    ]


def _files(folder: Path) -> set[str]:
    if not folder.exists():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


@pytest.mark.parametrize("kind", ["noise", "other"])
def test_a_broken_clip_is_retried_then_kept_under_rejected(demo, kind) -> None:
    resolved = _model(demo, _good_or(kind))
    result = run_job(_spec(demo), resolved)
    run_dir = demo / RUNS_FOLDER / "first_run"

    # The good clip: one try, accepted, its frames beside their labels.
    assert [t["accepted"] for t in _tries(run_dir, GOOD)] == [True]
    assert len(_frames(run_dir, GOOD)) == 9
    assert len(open_dataset(run_dir / GOOD).cameras["default"].frames) == 9

    # The broken one: tried twice (retries: 1), the second time with the derived seed.
    tries = _tries(run_dir, BROKEN)
    first_seed = tries[0]["seed"]
    assert [(t["attempt"], t["seed"], t["accepted"]) for t in tries] == [
        (0, first_seed, False),
        (1, attempt_seed(first_seed, 1), False),
    ]
    assert [s for p, s in resolved.model.seeds if "sunlight" not in p] == [
        first_seed,
        attempt_seed(first_seed, 1),
    ]
    assert all(t["reasons"] for t in tries)
    # Absent from its variation's folder and from the frame lines a loader reads ...
    assert _files(run_dir / BROKEN) == set()
    assert _frames(run_dir, BROKEN) == []
    # ... and present under rejected/, with its scores and reasons.
    rejected = _files(run_dir / "rejected" / BROKEN)
    assert {f for f in rejected if f.endswith(".png")} == {f"rgb_{i:04d}.png" for i in range(9)}
    (scores_file,) = [f for f in rejected if f.endswith(".json")]
    record = json.loads((run_dir / "rejected" / BROKEN / scores_file).read_text())
    assert [t["reasons"] for t in record["tries"]] == [t["reasons"] for t in tries]
    assert tries[-1]["kept"] == [f"rejected/{BROKEN}/rgb_{i:04d}.png" for i in range(9)]
    assert (result.generated, result.rejected) == (9, 9)

    acceptance = json.loads((run_dir / "run.json").read_text())["metrics"]["acceptance"]
    assert acceptance == {
        GOOD: {"clips": 1, "accepted": 1, "rate": 1.0},
        BROKEN: {"clips": 1, "accepted": 0, "rate": 0.0},
    }


def test_a_retry_that_passes_is_written_with_its_seed(demo) -> None:
    seeds: list[int] = []

    def noise_first(prompt, seed):
        seeds.append(seed)
        return "noise" if len(seeds) == 1 else "good"

    run_job(_spec(demo), _model(demo, noise_first))
    run_dir = demo / RUNS_FOLDER / "first_run"
    tries = _tries(run_dir, GOOD)
    assert [(t["attempt"], t["accepted"], t["kept"] == []) for t in tries] == [
        (0, False, True),
        (1, True, False),
    ]
    frames = [x for x in _lines(run_dir) if x.get("variation") == GOOD and "output" in x]
    assert len(frames) == 9 and {x["seed"] for x in frames} == {attempt_seed(seeds[0], 1)}
    assert _files(run_dir / "rejected") == set()


def test_a_rerun_with_the_same_spec_does_nothing(demo) -> None:
    spec = _spec(demo)
    run_job(spec, _model(demo, _good_or("noise")))
    run_dir = demo / RUNS_FOLDER / "first_run"
    before = {k: v for k, v in file_hashes(run_dir, False).items() if k != "run.json"}
    manifest = (run_dir / "manifest.jsonl").read_bytes()

    again = _model(demo, _good_or("noise"))
    result = run_job(spec, again)
    assert again.model.seeds == []
    assert (result.generated, result.rejected, result.skipped) == (0, 0, 18)
    assert {k: v for k, v in file_hashes(run_dir, False).items() if k != "run.json"} == before
    assert (run_dir / "manifest.jsonl").read_bytes() == manifest


def test_changed_thresholds_judge_the_kept_frames_again_without_generating(demo) -> None:
    run_job(_spec(demo), _model(demo, _good_or("noise")))
    run_dir = demo / RUNS_FOLDER / "first_run"
    good_png = (run_dir / GOOD / "rgb_0004.png").read_bytes()
    noise_png = (run_dir / "rejected" / BROKEN / "rgb_0004.png").read_bytes()

    # Every check off: the rejected clip is accepted, moved beside its labels.
    loose = dict.fromkeys(n for n in QualitySpec.model_fields if n.startswith(("min_", "max_")))
    model = _model(demo, _good_or("noise"))
    result = run_job(_spec(demo, **loose), model)
    assert model.model.seeds == [] and result.generated == 0
    assert (run_dir / BROKEN / "rgb_0004.png").read_bytes() == noise_png
    assert len(open_dataset(run_dir / BROKEN).cameras["default"].frames) == 9
    assert len(_frames(run_dir, BROKEN)) == 9
    assert _files(run_dir / "rejected") == set()
    assert _tries(run_dir, BROKEN)[-1]["accepted"] is True

    # A threshold no output meets: both are rejected, moved under rejected/.
    model = _model(demo, _good_or("noise"))
    run_job(_spec(demo, min_edge_f1=1.0), model)
    assert model.model.seeds == []
    assert _files(run_dir / GOOD) == _files(run_dir / BROKEN) == set()
    assert [x for x in _lines(run_dir) if "output" in x] == []
    assert (run_dir / "rejected" / GOOD / "rgb_0004.png").read_bytes() == good_png
    assert (run_dir / "rejected" / BROKEN / "rgb_0004.png").read_bytes() == noise_png
    metrics = json.loads((run_dir / "run.json").read_text())["metrics"]
    assert {n: a["rate"] for n, a in metrics["acceptance"].items()} == {GOOD: 0.0, BROKEN: 0.0}


def test_the_gate_off_writes_every_clip_and_no_tries(demo) -> None:
    run_job(starter(demo), _model(demo, _good_or("noise")))
    run_dir = demo / RUNS_FOLDER / "first_run"
    assert len(_frames(run_dir, BROKEN)) == 9
    assert not any("attempt" in x for x in _lines(run_dir))
    assert not (run_dir / "rejected").exists()


def test_the_contact_sheet_marks_a_rejected_clip(demo) -> None:
    run_job(_spec(demo), _model(demo, _good_or("noise")))
    run_dir = demo / RUNS_FOLDER / "first_run"
    (sheet_path,) = run_dir.glob("report/**/contact_sheet.png")
    sheet = cv2.cvtColor(cv2.imread(str(sheet_path)), cv2.COLOR_BGR2RGB)
    # The rejected column is framed in red; the accepted one is not.
    red = np.all(sheet == (230, 40, 40), axis=-1)[: sheet.shape[0] // 2]  # the grid, not the notes
    columns = np.flatnonzero(red.any(axis=0))
    width = sheet.shape[1]
    assert columns.size and columns.min() > width * 0.6  # the last column: BROKEN's
    metrics = json.loads(next(run_dir.glob("report/**/metrics.json")).read_text())
    assert metrics["variations"][BROKEN]["accepted"] is False
    assert metrics["variations"][GOOD]["accepted"] is True
