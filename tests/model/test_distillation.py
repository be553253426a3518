"""Few-step distillation on tiny models: the schedule, the pairs, training, resume, and a
student run through `cosmos-bridge run` and `cosmos-bridge distill` as users run them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from conftest import HEIGHT, WIDTH, stack

from bridge_core.controls.stack import CONTROL_NAMES
from bridge_core.run.protocol import SamplingSettings
from transfer_model import (
    MODEL_PRESETS,
    CosmosTransferModel,
    hash_prompt_cache,
    load_transfer_model,
)
from transfer_model.cosmos import distillation
from transfer_model.cosmos.distillation import DistillSchedule, TeacherPairs
from transfer_model.cosmos.student import StudentSchedule, student_sigmas

TEXT_DIM = MODEL_PRESETS["tiny"].text_embed_dim
SCHEDULE = DistillSchedule(
    steps=4, pairs=8, pair_batch=4, teacher_steps=3, train_steps=40, batch=4, lr=1e-3
)


class _Stop(Exception):
    pass


@pytest.fixture
def demo_dataset(tmp_path):
    """A copy of the committed sample dataset (128x128, 9 frames)."""
    import shutil

    from bridge_core.demo import SAMPLE_DATASET

    return shutil.copytree(SAMPLE_DATASET, tmp_path / "warehouse_demo")


def _teacher() -> CosmosTransferModel:
    return CosmosTransferModel.from_preset(
        "tiny",
        seed=0,
        zero_init_branches=False,
        prompt_cache=hash_prompt_cache(TEXT_DIM),
    )


def _controls(scenes: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        n: rng.integers(0, 256, (scenes, 5, HEIGHT, WIDTH, 3), dtype=np.uint8)
        for n in CONTROL_NAMES
    }


def _prompts() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 8, TEXT_DIM, generator=g), torch.randn(8, TEXT_DIM, generator=g)


def _distil(tmp_path, schedule=SCHEDULE, log=lambda *a: None, resume=False):
    prompts, negative = _prompts()
    return distillation.distill(
        _teacher(),
        "tiny",
        _controls(),
        prompts,
        negative,
        schedule,
        tmp_path / "pairs",
        tmp_path / "checkpoint",
        log,
        resume=resume,
        checkpoint_every_s=0.0,
    )


def test_a_student_runs_in_each_divisor_of_its_steps_and_refuses_the_rest() -> None:
    student = StudentSchedule(student_sigmas(4), "teacher", 12, 3.0)
    assert student.steps == (4, 2, 1)
    assert student.sigmas_for(4) == [1.0, 0.75, 0.5, 0.25]
    assert student.sigmas_for(2) == [1.0, 0.5]
    assert student.sigmas_for(1) == [1.0]
    field, why = student.check(3, 0.0)
    assert field == "model.num_steps" and "4, 2, 1" in why
    field, why = student.check(4, 3.0)
    assert field == "model.guidance" and "set guidance to 0" in why
    assert student.check(2, 0.0) is None
    assert StudentSchedule.from_json(json.loads(json.dumps(student.to_json()))) == student


def test_region_weights_switch_a_random_subset_on_and_stay_normalised() -> None:
    rng = np.random.default_rng(0)
    names = list(CONTROL_NAMES)
    seen_region = False
    for _ in range(50):
        w = distillation.random_region_weights(names, (2, 4, 4), rng)
        assert w.shape == (4, 32)
        assert w.sum(dim=1).gt(0).any()  # at least one branch on
        assert torch.all(w.sum(dim=0) <= 1 + 1e-6)  # w / max(sum w, 1) per token
        seen_region |= bool(((w > 0).sum(dim=1) % 32 != 0).any())
    assert seen_region  # some maps cover only part of the frame


def test_pairs_are_cached_and_the_same_when_rebuilt(tmp_path) -> None:
    teacher = _teacher()
    latents = distillation.chunk_controls(teacher, _controls(), teacher.device)
    prompts, negative = _prompts()
    built = distillation.build_pairs(
        teacher, latents, prompts, negative, SCHEDULE, tmp_path / "pairs"
    )
    assert len(built) == SCHEDULE.pairs
    assert len(list((tmp_path / "pairs").glob("pairs_*.safetensors"))) == 2
    # The teacher moved its noise somewhere: a result is not its noise.
    assert (built.result - built.noise).abs().mean() > 0.1

    again = distillation.teacher_pair_block(teacher, latents, prompts, negative, SCHEDULE, 1)
    torch.testing.assert_close(
        again.result, TeacherPairs.load(tmp_path / "pairs" / "pairs_0001.safetensors").result
    )
    calls = []
    cached = distillation.build_pairs(
        teacher, latents, prompts, negative, SCHEDULE, tmp_path / "pairs",
        lambda done, total: calls.append(done),
    )  # fmt: skip
    assert calls == [1, 2]
    assert torch.equal(cached.result, built.result)


def test_a_teacher_guiding_its_controls_makes_other_pairs_and_the_student_says_so(
    tmp_path,
) -> None:
    teacher = _teacher()
    latents = distillation.chunk_controls(teacher, _controls(), teacher.device)
    prompts, negative = _prompts()
    schedule = replace(SCHEDULE, guide_controls=True)
    plain = distillation.teacher_pair_block(teacher, latents, prompts, negative, SCHEDULE, 0)
    guided = distillation.teacher_pair_block(teacher, latents, prompts, negative, schedule, 0)
    assert torch.equal(guided.noise, plain.noise)  # the same draws, another integration
    assert (guided.result - plain.result).abs().mean() > 1e-3

    student, _ = _distil(tmp_path, replace(schedule, train_steps=2))
    assert student.student.teacher_guide_controls
    assert not StudentSchedule(student_sigmas(4), "teacher", 12, 3.0).teacher_guide_controls


def test_the_student_loss_goes_down_and_it_samples_in_4_2_and_1_steps(tmp_path) -> None:
    student, history = _distil(tmp_path)
    losses = history.losses["student"]
    assert len(losses) == SCHEDULE.train_steps
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert student.student.steps == (4, 2, 1) and student.student.teacher == "tiny"
    assert student.requirements.sampling_steps == (4, 2, 1)
    assert not student.requirements.takes_guidance

    controls = stack({"edge": 1.0, "depth": 1.0}, 5)
    prompt = _prompts()[0][:1]
    frames = {
        n: student.generate(controls, prompt, None, 0, SamplingSettings(num_steps=n, guidance=0))
        for n in (4, 2, 1)
    }
    for f in frames.values():
        assert f.shape == (5, HEIGHT, WIDTH, 3) and f.dtype == np.uint8
    assert not np.array_equal(frames[4], frames[1])
    with pytest.raises(ValueError, match="step"):
        student.generate(controls, prompt, None, 0, SamplingSettings(num_steps=3, guidance=0))
    with pytest.raises(ValueError, match="guidance"):
        student.generate(controls, prompt, None, 0, SamplingSettings(num_steps=4, guidance=3))


def test_a_distillation_stopped_mid_way_resumes_to_the_same_student(tmp_path) -> None:
    schedule = DistillSchedule(
        steps=2, pairs=4, pair_batch=4, teacher_steps=2, train_steps=4, batch=2, lr=1e-3
    )
    whole, whole_history = _distil(tmp_path / "whole", schedule)

    def stop(phase: str, step: int, steps: int, loss: float) -> None:
        if step == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _distil(tmp_path / "broken", schedule, stop)
    resumed, history = _distil(tmp_path / "broken", schedule, resume=True)
    assert history.losses == whole_history.losses
    expected = whole.transformer.state_dict()
    for key, value in resumed.transformer.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_a_student_sharing_its_teachers_parts_loads_and_runs_through_cosmos_bridge_run(
    tmp_path, run_cli, demo_dataset
) -> None:
    """Saved beside its teacher (transformer only), loaded back from the spec's model
    folder, run as users run it; run.json and the manifest name the student and its
    teacher; a spec asking for steps or guidance it cannot honour is refused first."""
    schedule = DistillSchedule(
        steps=2, pairs=4, pair_batch=4, teacher_steps=2, train_steps=2, batch=2
    )
    student, _ = _distil(tmp_path, schedule)
    teacher_dir, student_dir = tmp_path / "teacher", tmp_path / "student"
    _teacher().save_pretrained(teacher_dir)
    student.save_pretrained(student_dir, parts_from=teacher_dir)
    assert sorted(p.name for p in student_dir.iterdir()) == ["transfer_model.json", "transformer"]
    loaded = load_transfer_model(student_dir, device="cpu")
    assert loaded.student == student.student
    assert set(loaded.branches) == set(CONTROL_NAMES)

    spec_path = tmp_path / "job.yaml"
    spec = {
        "version": 1,
        "input": {"dataset": str(demo_dataset), "frames": "0:5"},
        "controls": {"edge": {"weight": 1.0}, "depth": {"weight": 1.0}},
        "variations": [{"name": "day", "prompt": "a warehouse in daylight", "seed": 0}],
        "model": {"id": str(student_dir), "num_steps": 35, "guidance": 0.0},
        "output": {"run_name": "student"},
    }
    spec_path.write_text(yaml.safe_dump(spec))
    refused = run_cli("run", spec_path)
    assert refused.exit_code != 0 and "model.num_steps" in refused.stdout + refused.stderr
    assert not (demo_dataset / "cosmos_transfer" / "student").exists()

    spec["model"].update(num_steps=2)
    spec_path.write_text(yaml.safe_dump(spec))
    done = run_cli("run", spec_path)
    assert done.exit_code == 0, done.stdout + done.stderr
    run_dir = demo_dataset / "cosmos_transfer" / "student"
    assert len(list((run_dir / "day").glob("rgb_*.png"))) == 5
    record = json.loads((run_dir / "run.json").read_text())
    assert record["model"]["student"]["teacher"] == "tiny"
    assert record["model"]["requirements"]["sampling_steps"] == [2, 1]
    lines = [json.loads(x) for x in (run_dir / "manifest.jsonl").read_text().splitlines()]
    frames = [x for x in lines if "attempt" not in x]
    assert frames and all(x["model"]["teacher"] == "tiny" for x in frames)
    assert all(x["model"]["num_steps"] == 2 and x["model"]["guidance"] == 0 for x in frames)
