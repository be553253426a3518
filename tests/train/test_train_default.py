"""The default model's training: packing, the three phases, the command and its outputs.

Training runs a few steps on small synthetic clips: what is tested is that each phase
moves what it should and nothing else, and that the command leaves a model that loads
and generates; the quality of the shipped weights is bench/fidelity.py's job.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bridge_core.controls.stack import CONTROL_NAMES
from bridge_core.train.command import clip_set
from bridge_core.train.data import PackedClips, load_packed, save_packed
from bridge_core.trainset.conditions import CONDITIONS
from transfer_model import load_transfer_model
from transfer_model.cosmos import configs, training

SIZE = 32


def synthetic_packed(scenes: int = 2) -> PackedClips:
    """Boxes on a floor as controls; targets tinted per condition (night dark)."""
    rng = np.random.default_rng(0)
    conditions = list(CONDITIONS)
    controls = {name: np.zeros((scenes, 9, SIZE, SIZE, 3), np.uint8) for name in CONTROL_NAMES}
    targets = np.zeros((scenes, len(conditions), 9, SIZE, SIZE, 3), np.uint8)
    for s in range(scenes):
        x = int(rng.integers(4, SIZE - 12))
        for name in CONTROL_NAMES:
            controls[name][s, :, 16:, :] = 90
            controls[name][s, :, 8:20, x : x + 8] = 200
        for c, name in enumerate(conditions):
            level = 40 if name == "night" else 180
            targets[s, c] = (controls["blur"][s].astype(np.float32) * level / 200).astype(np.uint8)
    # Grey controls are grey: their three channels are equal.
    return PackedClips(targets, controls, np.arange(scenes), conditions)


def test_packed_clips_round_trip_with_grey_controls_stored_once(tmp_path) -> None:
    packed = synthetic_packed()
    save_packed(packed, tmp_path / "clips.npz")
    with np.load(tmp_path / "clips.npz") as raw:
        assert raw["control_depth"].shape[-1] == 1 and raw["control_seg"].shape[-1] == 3
    back = load_packed(tmp_path / "clips.npz")
    np.testing.assert_array_equal(back.targets, packed.targets)
    for name in CONTROL_NAMES:
        np.testing.assert_array_equal(back.controls[name], packed.controls[name])
    assert back.conditions == packed.conditions and list(back.seeds) == [0, 1]
    assert not list(tmp_path.glob("*.tmp*"))


def test_clip_set_pairs_every_target_with_its_scene_and_prompt() -> None:
    packed = synthetic_packed(scenes=3)
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    assert len(clips) == 3 * len(CONDITIONS)
    night = packed.conditions.index("night")
    i = 2 * len(CONDITIONS) + night  # scene 2, night
    np.testing.assert_array_equal(clips.targets[i], packed.targets[2, night])
    assert clips.scene[i] == 2 and clips.prompt[i] == night
    assert clips.prompt_embeds.shape == (len(CONDITIONS), 128, 16)
    # A dropped prompt becomes the negative prompt, which guidance pushes away from.
    assert clips.null_embed.abs().sum() > 0


def _tiny_preset() -> configs.ModelPreset:
    return configs.ModelPreset(
        num_layers=2,
        num_heads=2,
        head_dim=16,
        inject_every=1,
        text_embed_dim=16,
        mlp_ratio=2.0,
        adaln_lora_dim=4,
        vae_base_dim=4,
        max_size=(4, 4, 4),
        frames_per_chunk=9,
    )


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_each_phase_trains_its_own_modules_only() -> None:
    preset = _tiny_preset()
    packed = synthetic_packed()
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    schedule = training.Schedule(vae_steps=2, vae_batch=2, base_steps=2, branch_steps=2, batch=2)
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    vae, transformer = configs.build_vae(preset), configs.build_transformer(preset)
    branches = {name: configs.build_branch(preset) for name in CONTROL_NAMES}
    history = training.History()

    before_vae = _state(vae)
    training.train_vae(vae, clips, schedule, cpu, history)
    assert _changed(before_vae, vae)

    encoded = training.encode_set(vae, clips, cpu)
    assert encoded.target_mean.shape == (len(clips), 16, 3, SIZE // 8, SIZE // 8)
    # Normalised with the statistics it now records for the sampler.
    assert abs(float(encoded.target_mean.mean())) < 1e-3
    assert len(vae.config.latents_mean) == 16

    before_vae, before_branches = _state(vae), {n: _state(b) for n, b in branches.items()}
    before_base = _state(transformer)
    training.train_base(transformer, encoded, clips, schedule, cpu, history)
    assert _changed(before_base, transformer) and not _changed(before_vae, vae)
    assert not any(_changed(before_branches[n], b) for n, b in branches.items())

    before_base = _state(transformer)
    training.train_branches(transformer, branches, encoded, clips, schedule, cpu, history)
    assert not _changed(before_base, transformer), "the base must stay frozen"
    assert any(_changed(before_branches[n], b) for n, b in branches.items())
    encoder_before, decoder_before = _state(vae.encoder), _state(vae.decoder)
    training.train_decoder(vae, clips, replace(schedule, decoder_steps=2), cpu, history)
    assert _changed(decoder_before, vae.decoder)
    assert not _changed(encoder_before, vae.encoder), "latents must not move"
    steps = {p: len(v) for p, v in history.losses.items()}
    assert steps == {"vae": 2, "base": 2, "branches": 2, "decoder": 2}
    assert all(np.isfinite(v).all() for v in history.losses.values())


def test_the_branch_phase_trains_the_base_too_only_when_asked() -> None:
    """--branch-base-lr: the base learns beside the branches, at its share of their rate;
    the branches learn as they do with the base frozen."""
    preset = _tiny_preset()
    clips = clip_set(synthetic_packed(), [CONDITIONS[c].prompt for c in CONDITIONS], 16)
    schedule = training.Schedule(vae_steps=2, vae_batch=2, base_steps=2, branch_steps=3, batch=2)
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    vae, transformer = configs.build_vae(preset), configs.build_transformer(preset)
    branches = {name: configs.build_branch(preset, zero_init=False) for name in CONTROL_NAMES}
    training.train_vae(vae, clips, schedule, cpu, training.History())
    encoded = training.encode_set(vae, clips, cpu)

    def branch_phase(share: float) -> tuple[bool, bool]:
        base, copies = copy.deepcopy(transformer), copy.deepcopy(branches)
        before = _state(base), {n: _state(b) for n, b in copies.items()}
        joint = replace(schedule, branch_base_lr=share)
        training.train_branches(base, copies, encoded, clips, joint, cpu, training.History())
        assert all(p.requires_grad for p in base.parameters()) and not base.training
        return _changed(before[0], base), all(_changed(before[1][n], copies[n]) for n in copies)

    assert branch_phase(0.0) == (False, True)
    assert branch_phase(0.25) == (True, True)


def test_a_new_branch_leaves_the_base_model_unchanged() -> None:
    """ControlNet's zero-initialised projections: before training a branch adds nothing."""
    preset = _tiny_preset()
    torch.manual_seed(0)
    transformer = configs.build_transformer(preset).eval()
    branch = configs.build_branch(preset, zero_init=True).eval()
    latents = torch.randn(1, 16, 2, 4, 4)
    args = dict(
        timestep=torch.full((1, 1, 2, 1, 1), 0.5),
        encoder_hidden_states=torch.randn(1, 8, 16),
        condition_mask=torch.zeros(1, 1, 2, 4, 4),
        padding_mask=torch.zeros(1, 1, 32, 32),
        return_dict=False,
    )
    with torch.no_grad():
        residuals = branch(controls_latents=torch.randn(1, 16, 2, 4, 4), latents=latents, **args)[0]
        plain = transformer(hidden_states=latents, **args)[0]
        steered = transformer(
            hidden_states=latents, block_controlnet_hidden_states=residuals, **args
        )[0]
    assert all(float(r.abs().max()) == 0.0 for r in residuals)
    torch.testing.assert_close(plain, steered)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    """`cosmos-bridge train-default` on synthetic clips: two steps per phase on the CPU."""
    from typer.testing import CliRunner

    from bridge_core.cli import app

    workdir = tmp_path_factory.mktemp("train")
    save_packed(synthetic_packed(), workdir / "clips.npz")
    args = ["train-default", "--workdir", str(workdir), "--device", "cpu", "--batch", "2"]
    args += ["--vae-steps", "2", "--base-steps", "2", "--branch-steps", "2", "--decoder-steps", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return workdir, result.output


def test_train_default_writes_a_fp16_model_with_its_curves(trained_workdir) -> None:
    workdir, output = trained_workdir
    model_dir = workdir / "model"
    assert "model written to" in output and "ms/step" in output
    weights = sorted(model_dir.rglob("*.safetensors"))
    names = {p.parent.relative_to(model_dir).as_posix() for p in weights}
    assert names == {"transformer", "vae", *(f"controlnet/{c}" for c in CONTROL_NAMES)}
    tensors = load_file(model_dir / "transformer" / "diffusion_pytorch_model.safetensors")
    assert torch.float16 in {t.dtype for t in tensors.values()}
    record = json.loads((workdir / "history.json").read_text())
    steps = {p: len(v) for p, v in record["losses"].items()}
    assert steps == {"vae": 2, "base": 2, "branches": 2, "decoder": 1}
    assert record["scenes"] == [0, 1] and record["conditions"] == list(CONDITIONS)
    assert (workdir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_trained_model_loads_with_its_hash_prompt_encoder(trained_workdir, tmp_path) -> None:
    from bridge_core.controls.stack import ControlStack
    from bridge_core.run.protocol import SamplingSettings

    workdir, _ = trained_workdir
    model = load_transfer_model(workdir / "model", device="cpu", prompt_cache_dir=tmp_path)
    assert model.origin == "project" and model.frames_per_chunk == 9
    assert model.prompt_cache.encoder_id.startswith("cosmos-transfer-bridge/hash-text-encoder")
    videos = {name: np.full((9, SIZE, SIZE, 3), 0.5, np.float32) for name in CONTROL_NAMES}
    weights = {name: np.full((9, SIZE, SIZE), 0.25, np.float32) for name in CONTROL_NAMES}
    frames = model.generate(
        ControlStack(videos, weights),
        CONDITIONS["night"].prompt,
        None,
        0,
        SamplingSettings(num_steps=2, guidance=1.0),
    )
    assert frames.shape == (9, SIZE, SIZE, 3) and frames.dtype == np.uint8


def test_going_on_from_a_saved_model_keeps_earlier_curves(trained_workdir, run_cli) -> None:
    workdir, _ = trained_workdir
    result = run_cli(
        "train-default",
        "--workdir",
        workdir,
        "--device",
        "cpu",
        "--batch",
        "2",
        "--vae-steps",
        "0",
        "--base-steps",
        "0",
        "--branch-steps",
        "3",
        "--decoder-steps",
        "0",
        "--init",
        workdir / "model",
        "--out",
        workdir / "model2",
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    # No terminal here: progress comes as lines, the phase's last step with its loss.
    assert "branches step 3/3 loss " in result.stdout
    record = json.loads((workdir / "history.json").read_text())
    steps = {p: len(v) for p, v in record["losses"].items()}
    assert steps == {"vae": 2, "base": 2, "branches": 3, "decoder": 1}
    assert record["schedule"]["vae_steps"] == 2 and record["schedule"]["branch_steps"] == 3
    first = load_transfer_model(workdir / "model", device="cpu")
    second = load_transfer_model(workdir / "model2", device="cpu")
    for a, b in zip(first.transformer.parameters(), second.transformer.parameters(), strict=True):
        torch.testing.assert_close(a, b)  # base steps 0: the base is kept as it was


def test_train_default_refuses_a_size_that_is_not_a_multiple_of_16(run_cli, tmp_path) -> None:
    result = run_cli("train-default", "--workdir", tmp_path / "w", "--size", "100")
    assert result.exit_code == 2 and "multiple of 16" in result.stdout + result.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("preset", ["huge", "2b"])
def test_train_default_refuses_a_preset_it_cannot_train_before_building_anything(
    run_cli, tmp_path, preset
) -> None:
    """ "huge" is no preset; "2b" takes Cosmos-Reason's prompts, not the hash encoder's."""
    result = run_cli("train-default", "--workdir", tmp_path / "w", "--preset", preset)
    assert result.exit_code == 2
    assert f"preset {preset!r} cannot be trained here" in result.stdout + result.stderr
    assert "codec4x" in result.stdout + result.stderr
    assert not (tmp_path / "w").exists()


def test_the_shipped_default_model_loads_offline_and_fits_30_mb(monkeypatch) -> None:
    from bridge_core.run.models import resolve_model
    from bridge_core.spec.models import ModelSpec
    from transfer_model import DEFAULT_MODEL_DIR

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = list(DEFAULT_MODEL_DIR.rglob("*.safetensors"))
    assert len(weights) == 2 + len(CONTROL_NAMES)
    assert sum(p.stat().st_size for p in weights) <= 30_000_000
    resolved = resolve_model(ModelSpec(id="default"))
    assert not resolved.random and resolved.model.origin == "project"
    assert set(resolved.model.branches) == set(CONTROL_NAMES)
    assert resolved.model.max_resolution == (256, 256)


def test_the_shipped_student_loads_offline_beside_its_teacher_within_40_mb(monkeypatch) -> None:
    from bridge_core.run.models import resolve_model
    from bridge_core.spec.models import ModelSpec
    from transfer_model import DEFAULT_MODEL_DIR, DEFAULT_STUDENT_DIR

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Only its transformer is its own; the codec and branches are the teacher's files.
    assert [p.parent.name for p in DEFAULT_STUDENT_DIR.rglob("*.safetensors")] == ["transformer"]
    weights = [
        *DEFAULT_MODEL_DIR.rglob("*.safetensors"),
        *DEFAULT_STUDENT_DIR.rglob("*.safetensors"),
    ]
    assert sum(p.stat().st_size for p in weights) <= 40_000_000
    resolved = resolve_model(ModelSpec(id="default", revision="default-v3.2-4step"))
    assert not resolved.random and resolved.model.origin == "project"
    assert resolved.student["teacher"] == "default@default-v3.2"
    assert resolved.model.student.steps == (4, 2, 1)
    assert set(resolved.model.branches) == set(CONTROL_NAMES)


def test_control_gain_is_none_for_new_branches_and_shows_trained_ones() -> None:
    """bench/branch_gain.py's measure: zero-initialised branches leave every loss at the
    base's; branches with an effect move it, each by its own amount."""
    preset = _tiny_preset()
    packed = synthetic_packed()
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    torch.manual_seed(0)
    vae, transformer = configs.build_vae(preset), configs.build_transformer(preset).eval()
    encoded = training.encode_set(vae, clips, torch.device("cpu"))
    new = {name: configs.build_branch(preset).eval() for name in CONTROL_NAMES}
    gains = training.control_gain(transformer, new, encoded, clips, [0.3, 0.9], batch_size=4)
    assert list(gains) == [0.3, 0.9]
    for losses in gains.values():
        assert set(losses) == {"base", "all", *CONTROL_NAMES}
        assert all(value == losses["base"] for value in losses.values())

    active = {name: configs.build_branch(preset, zero_init=False).eval() for name in CONTROL_NAMES}
    for losses in training.control_gain(transformer, active, encoded, clips, [0.5], 4).values():
        assert len({round(value, 6) for value in losses.values()}) == len(losses)


def test_round_trip_returns_clips_of_the_same_shape_that_a_trained_codec_keeps_closer() -> None:
    """bench/fidelity.py's codec ceiling: the VAE's encode-decode, in picture units."""
    preset = _tiny_preset()
    packed = synthetic_packed()
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    torch.manual_seed(0)
    vae = configs.build_vae(preset)
    video = clips.targets[:2]
    before = training.round_trip(vae, video)
    assert before.shape == video.shape and before.dtype == np.uint8
    schedule = training.Schedule(vae_steps=30, vae_batch=4, vae_crop=SIZE)
    training.train_vae(vae, clips, schedule, torch.device("cpu"), training.History())
    vae.eval()
    after = training.round_trip(vae, video)

    def error(out: np.ndarray) -> float:
        return float(np.abs(out.astype(np.int16) - video).mean())

    assert error(after) < error(before)


def test_decoder_latent_noise_is_off_by_default_and_bounded_per_sample() -> None:
    vae = configs.build_vae(_tiny_preset())
    latents = torch.zeros(64, 16, 1, 4, 4)
    generator = torch.Generator().manual_seed(0)
    off = training.latent_noise(vae, latents, training.Schedule(), generator)
    assert torch.equal(off, latents)
    schedule = training.Schedule(decoder_latent_noise=0.3)
    noise = training.latent_noise(vae, latents, schedule, generator)
    std = torch.tensor(vae.config.latents_std).view(1, 16, 1, 1, 1)
    # Per sample: noise of one level in channel-std units, levels spread over [0, 0.3).
    levels = (noise / std).flatten(1).std(dim=1)
    assert levels.max() < 0.3 * 1.3 and levels.min() < 0.1 < levels.max()


class _Stop(Exception):
    """Stands in for the kill at the end of a session."""


def _stop_at(phase: str, at: int):
    def log(name: str, step: int, steps: int, loss: float) -> None:
        if (name, step) == (phase, at):
            raise _Stop

    return log


def _weights(model) -> dict[str, torch.Tensor]:
    modules = {"vae": model.vae, "transformer": model.transformer, **model.branches}
    return {f"{n}.{k}": v for n, m in modules.items() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("phase", ["vae", "base", "branches", "decoder"])
def test_a_run_stopped_mid_phase_resumes_to_the_same_model(tmp_path, phase) -> None:
    """Checkpoints every step; the run stopped inside ``phase`` and resumed takes the
    same steps with the same batches and noise, so it ends bit for bit where an unbroken
    run ends, with every loss recorded once."""
    preset = _tiny_preset()
    packed = synthetic_packed()
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    schedule = training.Schedule(
        vae_steps=3, vae_batch=2, base_steps=3, branch_steps=3, decoder_steps=2, batch=2
    )
    cpu = torch.device("cpu")
    whole, whole_history = training.train_model(preset, clips, CONTROL_NAMES, schedule, cpu)

    folder = tmp_path / "checkpoint"
    with pytest.raises(_Stop):
        training.train_model(
            preset, clips, CONTROL_NAMES, schedule, cpu, _stop_at(phase, 2),
            checkpoint_dir=folder, checkpoint_every_s=0.0,
        )  # fmt: skip
    assert (folder / "state.json").exists()
    resumed, history = training.train_model(
        preset, clips, CONTROL_NAMES, schedule, cpu,
        checkpoint_dir=folder, checkpoint_every_s=0.0, resume=True,
    )  # fmt: skip
    assert history.losses == whole_history.losses
    assert history.done == ["vae", "base", "branches", "decoder"]
    expected = _weights(whole)
    for key, value in _weights(resumed).items():
        assert torch.equal(value, expected[key]), key
    # One tensors file: each checkpoint replaces the last.
    assert len(list(folder.glob("state.safetensors*"))) == 1


def test_train_default_resumes_only_when_asked(tmp_path, run_cli) -> None:
    from transfer_model.cosmos.configs import MODEL_PRESETS

    workdir = tmp_path / "w"
    workdir.mkdir()
    packed = synthetic_packed()
    save_packed(packed, workdir / "clips.npz")
    clips = clip_set(
        packed,
        [CONDITIONS[c].prompt for c in packed.conditions],
        MODEL_PRESETS["default"].text_embed_dim,
    )
    schedule = training.Schedule(vae_steps=2, vae_batch=2, base_steps=3, branch_steps=2, batch=2)
    with pytest.raises(_Stop):
        training.train_model(
            MODEL_PRESETS["default"], clips, CONTROL_NAMES, schedule, torch.device("cpu"),
            _stop_at("base", 2), checkpoint_dir=workdir / "checkpoint", checkpoint_every_s=0.0,
        )  # fmt: skip
    args = ["train-default", "--workdir", workdir, "--device", "cpu", "--batch", "2"]
    args += ["--vae-steps", "2", "--base-steps", "3", "--branch-steps", "2", "--decoder-steps", "0"]
    refused = run_cli(*args)
    assert refused.exit_code == 2 and "--resume" in refused.stdout + refused.stderr
    assert not (workdir / "model").exists()

    result = run_cli(*args, "--resume")
    assert result.exit_code == 0, result.stdout + result.stderr
    record = json.loads((workdir / "history.json").read_text())
    assert {p: len(v) for p, v in record["losses"].items()} == {"vae": 2, "base": 3, "branches": 2}
    assert load_transfer_model(workdir / "model", device="cpu").origin == "project"
    assert not (workdir / "checkpoint").exists()  # finished: nothing left to resume


def test_split_frames_keeps_every_target_with_its_own_frames_controls() -> None:
    packed = synthetic_packed(scenes=3)
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    frames = training.split_frames(clips, 1)
    assert frames.targets.shape == (len(clips) * 9, 1, SIZE, SIZE, 3)
    i, t = 2 * len(CONDITIONS) + 1, 7  # scene 2, the second condition, frame 7
    k = i * 9 + t
    np.testing.assert_array_equal(frames.targets[k, 0], clips.targets[i, t])
    for name in CONTROL_NAMES:
        scene = frames.scene[k]
        np.testing.assert_array_equal(
            frames.controls[name][scene, 0], clips.controls[name][clips.scene[i], t]
        )
    assert frames.prompt[k] == clips.prompt[i]


def test_a_model_of_one_frame_chunks_trains_and_samples_frame_by_frame() -> None:
    """No temporal compression, 1-frame chunks: trained on single frames, a clip of any
    length is generated one frame at a time (a conditioning-frame setting is ignored)."""
    from bridge_core.controls.stack import ControlStack
    from bridge_core.run.protocol import SamplingSettings

    preset = replace(
        _tiny_preset(),
        vae_dim_mult=(1, 2, 4),
        vae_temporal_downsample=(False, False),
        patch_size=(1, 2, 2),
        max_size=(1, 8, 8),
        frames_per_chunk=1,
    )
    packed = synthetic_packed()
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], 16)
    schedule = training.Schedule(vae_steps=2, vae_batch=2, base_steps=2, branch_steps=2, batch=2)
    model, history = training.train_model(
        preset, clips, tuple(CONTROL_NAMES), schedule, torch.device("cpu")
    )
    assert {p: len(v) for p, v in history.losses.items()} == {"vae": 2, "base": 2, "branches": 2}
    assert all(np.isfinite(v).all() for v in history.losses.values())
    assert model.frames_per_chunk == 1  # its clips still default to 9 frames (one seed)
    assert model.requirements.frames_per_chunk == 9

    video = np.random.default_rng(0).random((3, SIZE, SIZE, 3)).astype(np.float32)
    stack = ControlStack(
        videos={"edge": video}, weights={"edge": np.ones((3, SIZE, SIZE), np.float32)}
    )
    settings = SamplingSettings(num_steps=2, guidance=0.0, num_conditional_frames=1)
    frames = np.asarray(model.generate(stack, "a prompt", None, 0, settings))
    assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8


def test_the_sampler_draw_trains_where_the_sampler_steps() -> None:
    """The sampler's 12 steps sit mostly above sigma 0.9, where the logit-normal draw
    rarely goes: the "sampler" draw puts about as large a share of its noise levels
    there, across the whole range the sampler covers."""
    scheduler = configs.flow_scheduler()
    scheduler.set_timesteps(12)
    steps = scheduler.sigmas[:-1]
    high_steps = float((steps > 0.9).float().mean())

    generator = torch.Generator().manual_seed(0)
    sampler = training.draw_sigmas(20_000, "sampler", generator)
    logit = training.draw_sigmas(20_000, "logit-normal", generator)
    assert float((logit > 0.9).mean(dtype=torch.float32)) < 0.05
    assert abs(float((sampler > 0.9).mean(dtype=torch.float32)) - high_steps) < 0.1
    assert float(sampler.min()) <= float(steps.min()) + 1e-3
    assert float(sampler.max()) >= float(steps.max()) - 1e-3
    with pytest.raises(ValueError, match="sigma_draw"):
        training.draw_sigmas(4, "uniform", generator)


def test_train_default_refuses_an_unknown_sigma_draw_before_training(run_cli, tmp_path) -> None:
    workdir = tmp_path / "w"
    workdir.mkdir()
    save_packed(synthetic_packed(), workdir / "clips.npz")
    result = run_cli("train-default", "--workdir", workdir, "--sigma-draw", "uniform")
    assert result.exit_code == 2 and "logit-normal" in result.stdout + result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["clips.npz"]
