"""The gate's checks and verdict on arrays made to show each property, and the spec's
quality section refusing what it cannot use with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import bridge_core
from bridge_core.controls.edge import segment_edges
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB, SEMANTIC
from bridge_core.quality.checks import (
    LiftReference,
    boundary_band,
    frame_change,
    frame_changes,
    label_agreement,
    motion_agreement,
    object_boundaries,
    placements,
    structure_gradient,
    temporal_ratio,
)
from bridge_core.quality.gate import attempt_seed, judge, worst_margin
from bridge_core.run.loop import GATE_OFF, gate_digest
from bridge_core.run.metrics import MetricReference, grey_frames
from bridge_core.spec.models import QualitySpec

SAMPLES = Path(bridge_core.__file__).resolve().parents[1] / "samples" / "datasets"


def _two_objects() -> np.ndarray:
    """[2,64,64] ids: a floor (0), a box (1) on the left half, a 2-pixel speck (7)."""
    ids = np.zeros((2, 64, 64), np.int32)
    ids[:, 16:48, 8:32] = 1
    ids[:, 2, 60:62] = 7
    return ids


def test_boundaries_are_those_between_large_objects() -> None:
    boundaries = object_boundaries(_two_objects())
    assert boundaries[:, 16:48, 8:32].any()  # around the box
    assert not boundaries[:, :6, 56:].any()  # the speck is too small to count
    without_speck = np.where(_two_objects() == 7, 0, _two_objects())
    assert np.array_equal(boundaries, segment_edges(without_speck))


def test_label_agreement_is_high_where_outlines_follow_the_labels_one_for_noise() -> None:
    ids = _two_objects().repeat(2, axis=1).repeat(2, axis=2)  # [2,128,128]
    band = boundary_band(ids, (32, 32))  # the blur's grid: a quarter of each side
    assert band.shape == (2, 32, 32) and 0 < band.mean() < 0.5
    # The box drawn on the floor, at the blur's grid: all its outline is in the band.
    box = np.where(ids[:, 2::4, 2::4, None] == 1, 0.8, 0.2).astype(np.float32)
    drawn = np.repeat(box, 3, axis=-1)
    # (Sobel spreads an outline by a pixel, a few hundredths of it just outside)
    assert label_agreement(drawn, band) == pytest.approx(band.size / band.sum(), rel=0.02)
    # Noise, or the same box moved elsewhere, does not follow the labels.
    noise = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    assert label_agreement(noise, band) == pytest.approx(1.0, abs=0.2)
    moved = np.roll(drawn, 16, axis=2)
    assert label_agreement(moved, band) < 0.6
    assert label_agreement(np.zeros_like(drawn), band) == 0.0  # a flat output
    assert label_agreement(noise, np.zeros_like(band)) is None  # no boundary to agree with


def test_motion_agreement_is_one_for_the_input_motion_zero_for_a_frozen_output() -> None:
    rng = np.random.default_rng(0)
    still = np.repeat(rng.random((1, 16, 16, 3), np.float32), 5, axis=0)
    moving = np.stack([np.roll(still[0], t, axis=1) for t in range(5)])
    flicker = rng.random((5, 16, 16, 3), dtype=np.float32)
    moving, still, flicker = (grey_frames(x) for x in (moving, still, flicker))
    changes = frame_changes(moving)
    assert changes.shape == (4, 16, 16)
    assert motion_agreement(changes, frame_changes(moving * 0.5)) == pytest.approx(1.0)
    assert motion_agreement(changes, frame_changes(still)) == 0.0  # frozen
    assert abs(motion_agreement(changes, frame_changes(flicker))) < 0.2
    assert motion_agreement(frame_changes(still), changes) is None  # the input never moves
    assert motion_agreement(frame_changes(moving[:1]), frame_changes(moving[:1])) is None


def test_placements_are_the_clip_then_fifteen_displaced_copies() -> None:
    clip = np.arange(2 * 3 * 16).reshape(2, 3, 16)
    copies = list(placements(clip))
    assert len(copies) == 16 and copies[0] is clip
    assert all(c.shape == clip.shape for c in copies)
    assert len({c.tobytes() for c in copies}) == 16  # all different
    assert np.array_equal(copies[1], np.roll(clip, 2, axis=2))
    assert np.array_equal(copies[8], clip[:, :, ::-1])


def _lift_of(reference: MetricReference, band: np.ndarray, frames: np.ndarray) -> float:
    output = reference.output_side(frames)
    lift_in = LiftReference.of(reference.edges, reference.grey, band)
    return lift_in.control_lift(output.edges, output.grey, structure_gradient(output.grey))


def test_control_lift_is_high_for_the_scene_relit_low_for_another_or_noise_or_flat() -> None:
    (clip,) = open_dataset(SAMPLES / "warehouse_demo").clips()
    rgb = clip.stack(RGB)[..., :3]
    reference = MetricReference.of(rgb)
    band = boundary_band(clip.stack(SEMANTIC), reference.blurred.shape[1:3])
    relit = (rgb * 0.5 + 20).astype(np.uint8)
    assert _lift_of(reference, band, relit) > 3
    assert _lift_of(reference, None, relit) > 3  # without segmentation: edges and blur only
    (other,) = open_dataset(SAMPLES / "warehouse_tiny").clips(["Replicator"])
    other_rgb = np.stack([cv2.resize(f[..., :3], rgb.shape[2:0:-1]) for f in other.stack(RGB)])
    another = other_rgb[np.minimum(np.arange(len(rgb)), len(other_rgb) - 1)]
    noise = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    flat = np.full_like(rgb, 128)
    # Unrelated clips lift by chance only: about 0, within a standard deviation or so
    # (another warehouse shares much of this one's layout; its motion gives it away).
    for frames in (another, noise, flat):
        assert _lift_of(reference, band, frames) < 1.5


def test_temporal_ratio_is_one_for_a_steady_clip_and_high_for_flicker() -> None:
    rng = np.random.default_rng(0)
    still = np.repeat(rng.random((1, 16, 16, 3), np.float32), 5, axis=0)
    moving = np.stack([np.roll(still[0], t, axis=1) for t in range(5)])
    flicker = rng.random((5, 16, 16, 3), dtype=np.float32)
    assert temporal_ratio(frame_change(moving), frame_change(moving)) == pytest.approx(1.0)
    assert temporal_ratio(frame_change(flicker), frame_change(still)) > 20
    assert temporal_ratio(frame_change(still[:1]), frame_change(still[:1])) is None


def test_the_verdict_names_every_failed_check_and_skips_what_was_not_measured() -> None:
    quality = QualitySpec(enabled=True, min_edge_f1=0.1, min_blur_ssim=0.5, max_temporal_ratio=2.0)
    scores = {"edge_f1": 0.05, "blur_ssim": None, "label_agreement": 3.0, "temporal_ratio": 2.5}
    verdict = judge(scores, quality)
    assert not verdict.accepted
    assert verdict.reasons == ["edge_f1 0.050 < 0.1", "temporal_ratio 2.500 > 2"]
    assert judge(scores, quality.model_copy(update={"enabled": False})).accepted
    assert judge(
        scores, QualitySpec(enabled=True, min_edge_f1=None, max_temporal_ratio=None)
    ).accepted
    # Worst first: the largest shortfall relative to its threshold.
    assert worst_margin(scores, quality) == pytest.approx(-0.5)


def test_retry_seeds_are_derived_from_the_seed_and_the_try() -> None:
    assert attempt_seed(42, 0) == 42
    seeds = [attempt_seed(42, k) for k in range(1, 4)]
    assert len(set(seeds)) == 3 and 42 not in seeds
    assert seeds == [attempt_seed(42, k) for k in range(1, 4)]  # the same in every run
    assert attempt_seed(43, 1) != seeds[0]
    assert all(0 <= s < 2**63 for s in seeds)


def test_thresholds_change_the_gate_digest_retries_do_not() -> None:
    base = gate_digest(QualitySpec(enabled=True))
    assert gate_digest(QualitySpec(enabled=True, retries=3)) == base
    assert gate_digest(QualitySpec(enabled=True, min_edge_f1=0.2)) != base
    assert gate_digest(QualitySpec(enabled=False)) == GATE_OFF


@pytest.mark.parametrize(
    ("quality", "message"),
    [
        ({"min_edge_f1": 2}, "quality.min_edge_f1: Input should be less than or equal to 1"),
        ({"retries": -1}, "quality.retries: Input should be greater than or equal to 0"),
        ({"max_temporal_ratio": 0}, "quality.max_temporal_ratio: Input should be greater than 0"),
        ({"retry": 2}, "quality.retry: unknown field"),
        ({"critic": {"min_score": 1.5}}, "quality.critic.min_score"),
        ({"critic": {"trials": 0}}, "quality.critic.trials"),
        ("strict", "quality: Input should be a valid dictionary"),
    ],
)
def test_a_bad_quality_section_is_one_line_naming_the_field(
    run_cli, tmp_path, quality, message
) -> None:
    spec = {
        "input": {"dataset": "nowhere"},
        "controls": {"edge": {}},
        "variations": [{"name": "fog", "prompt": "fog"}],
        "quality": quality,
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_cli("validate", path)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_variation_may_take_the_rejected_folder(run_cli, tmp_path) -> None:
    spec = {
        "input": {"dataset": "nowhere"},
        "controls": {"edge": {}},
        "variations": [{"name": "Rejected", "prompt": "fog"}],
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_cli("validate", path)
    assert result.exit_code == 2 and "is the run's rejected folder" in result.stderr
