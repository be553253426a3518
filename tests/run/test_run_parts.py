"""The run loop's parts on their own: metrics, fitting to the model, seeds, the stand-in
text encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from run_helpers import YCB

from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.run.fit import fit_back, fit_controls, pad_to_multiple, plan_fit
from bridge_core.run.loop import clip_seed
from bridge_core.run.metrics import MetricReference, blur_ssim, edge_f1, ssim
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from transfer_model import HashTextEncoder


@pytest.fixture(scope="module")
def ycb_rgb() -> np.ndarray:
    """The 4 real frames of Replicator_04, [4,512,512,3] uint8."""
    return open_dataset(YCB).camera("Replicator_04").clips()[0].stack("rgb")


def test_edge_f1(ycb_rgb) -> None:
    assert edge_f1(ycb_rgb, ycb_rgb) == 1.0
    assert edge_f1(ycb_rgb, np.zeros_like(ycb_rgb)) == 0.0
    shifted = np.roll(ycb_rgb, 3, axis=2)
    assert 0.0 < edge_f1(ycb_rgb, shifted) < 1.0
    flat = np.full_like(ycb_rgb, 128)
    assert edge_f1(flat, flat) == 1.0  # no edges on either side


def test_blur_ssim(ycb_rgb) -> None:
    assert blur_ssim(ycb_rgb, ycb_rgb) == pytest.approx(1.0, abs=1e-9)
    noise = np.random.default_rng(0).integers(0, 256, ycb_rgb.shape, dtype=np.uint8)
    # Blurred noise is a flat grey: its SSIM against a mostly flat picture stays well above 0.
    assert blur_ssim(ycb_rgb, noise) < 0.9
    assert blur_ssim(ycb_rgb, 255 - ycb_rgb) < 0.2
    grey = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    assert ssim(grey, grey) == pytest.approx(1.0)
    assert ssim(grey, 1 - grey) < 0


def test_metric_reference_scores_as_the_metrics(ycb_rgb) -> None:
    """The input's side computed once gives exactly the scores of edge_f1 and blur_ssim."""
    reference = MetricReference.of(ycb_rgb)
    for outputs in (ycb_rgb, np.roll(ycb_rgb, 3, axis=2), 255 - ycb_rgb):
        assert reference.scores(outputs) == {
            "edge_f1": edge_f1(ycb_rgb, outputs),
            "blur_ssim": blur_ssim(ycb_rgb, outputs),
        }


def test_pad_to_multiple() -> None:
    t, h, w = 2, 5, 7
    rng = np.random.default_rng(0)
    video = rng.random((t, h, w, 3), dtype=np.float32)
    weights = np.full((t, h, w), 0.5, np.float32)
    padded = pad_to_multiple(ControlStack({"edge": video}, {"edge": weights}), 4)
    assert padded.shape == (t, 8, 8)
    assert np.array_equal(padded.videos["edge"][:, :h, :w], video)
    assert np.array_equal(padded.videos["edge"][:, h:, :w], np.repeat(video[:, -1:], 3, axis=1))
    assert np.array_equal(padded.videos["edge"][:, :h, w:], np.repeat(video[:, :, -1:], 1, axis=2))
    assert np.array_equal(padded.weights["edge"][:, :h, :w], weights)
    assert not padded.weights["edge"][:, h:].any() and not padded.weights["edge"][:, :, w:].any()
    already = ControlStack({"edge": padded.videos["edge"]}, {"edge": padded.weights["edge"]})
    assert pad_to_multiple(already, 4) is already


@pytest.mark.parametrize(
    ("size", "max_resolution", "scaled", "model_size"),
    [
        ((54, 96), None, (54, 96), (64, 96)),
        ((54, 96), (256, 256), (54, 96), (64, 96)),
        ((480, 640), (256, 256), (192, 256), (192, 256)),
        ((512, 512), (64, 64), (64, 64), (64, 64)),
        ((704, 1280), (250, 250), (132, 240), (144, 240)),
    ],
)
def test_plan_fit(size, max_resolution, scaled, model_size) -> None:
    needs = ModelRequirements(16, 5, ("edge",), max_resolution)
    fit = plan_fit(size, needs)
    assert (fit.scaled, fit.model_size) == (scaled, model_size)
    if max_resolution is not None:
        assert fit.model_size[0] <= max_resolution[1] and fit.model_size[1] <= max_resolution[0]


def test_fit_controls_and_back() -> None:
    t, h, w = 3, 480, 640
    seg = np.zeros((t, h, w, 3), np.float32)
    seg[:, :, 320:] = (0.2, 0.4, 0.6)
    stack = ControlStack(
        {"seg": seg, "edge": np.ones((t, h, w, 3), np.float32)},
        {"seg": np.ones((t, h, w), np.float32), "edge": np.ones((t, h, w), np.float32)},
    )
    fit = plan_fit((h, w), ModelRequirements(16, 5, ("seg", "edge"), (100, 100)))
    fitted = fit_controls(stack, fit)
    assert fitted.shape == (t, *fit.model_size) == (t, 80, 96)
    # Segment colours stay palette colours; the padded border gets no weight.
    colours = np.unique(fitted.videos["seg"].reshape(-1, 3), axis=0)
    assert np.array_equal(colours, np.array([[0, 0, 0], [0.2, 0.4, 0.6]], np.float32))
    sh, sw = fit.scaled
    assert not fitted.weights["seg"][:, sh:].any() and not fitted.weights["seg"][:, :, sw:].any()
    frames = np.zeros((t, *fit.model_size, 3), np.uint8)
    assert fit_back(frames, fit).shape == (t, h, w, 3)


def test_clip_seeds_differ_per_clip_and_repeat() -> None:
    clips = open_dataset(YCB).clips(clip_length=2)
    seeds = [clip_seed(7, c) for c in clips]
    assert len(set(seeds)) == len(clips) == 4
    assert seeds == [clip_seed(7, c) for c in open_dataset(YCB).clips(clip_length=2)]
    assert clip_seed(8, clips[0]) != seeds[0]


def test_hash_text_encoder() -> None:
    encoder = HashTextEncoder(32)
    a = encoder.encode(["A foggy warehouse", "a sunny warehouse"], 16)
    assert a.shape == (2, 16, 32)
    assert torch.equal(a, encoder.encode(["A foggy warehouse", "a sunny warehouse"], 16))
    assert torch.equal(a[0, 0], a[1, 0]) and torch.equal(a[0, 2], a[1, 2])  # 'a', 'warehouse'
    assert not torch.equal(a[0, 1], a[1, 1])
    assert not a[:, 3:].any()  # past the prompt: zeros


def test_text_prompts_reach_the_tiny_model(tiny_resolved) -> None:
    model = tiny_resolved.model
    t, h, w = 1, 32, 32
    controls = ControlStack(
        {"edge": np.full((t, h, w, 3), 0.5, np.float32)}, {"edge": np.ones((t, h, w), np.float32)}
    )
    settings = SamplingSettings(num_steps=1, num_conditional_frames=0)
    fog = model.generate(controls, "dense fog", None, 0, settings)
    sun = model.generate(controls, "bright sun", None, 0, settings)
    assert fog.shape == (t, h, w, 3) and fog.dtype == np.uint8
    assert not np.array_equal(fog, sun)
    assert np.array_equal(fog, model.generate(controls, "dense fog", None, 0, settings))
