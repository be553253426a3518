"""`cosmos-bridge distill` as a user runs it, on a tiny teacher folder: scenes captured,
pairs cached, a student written that loads and knows its teacher."""

from __future__ import annotations

import json

import pytest

from transfer_model import (
    MODEL_PRESETS,
    CosmosTransferModel,
    hash_prompt_cache,
    load_transfer_model,
)

ARGS = (
    "--steps", "2", "--scenes", "1", "--size", "64", "--pairs", "4", "--pair-batch", "4",
    "--teacher-steps", "2", "--train-steps", "3", "--batch", "2",
)  # fmt: skip


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    width = MODEL_PRESETS["tiny"].text_embed_dim
    model = CosmosTransferModel.from_preset(
        "tiny", seed=0, zero_init_branches=False, prompt_cache=hash_prompt_cache(width)
    )
    model.save_pretrained(folder)
    return folder


def test_distill_writes_a_student_beside_its_teacher_and_reuses_its_pairs(
    run_cli, tmp_path, teacher_dir
) -> None:
    workdir = tmp_path / "work"
    result = run_cli(
        "distill", "--teacher", teacher_dir, "--workdir", workdir, *ARGS, "--share-teacher-parts"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    student_dir = workdir / "student-2step"
    assert sorted(p.name for p in student_dir.iterdir()) == ["transfer_model.json", "transformer"]
    student = load_transfer_model(student_dir, device="cpu")
    assert student.student.steps == (2, 1)
    assert student.student.teacher == str(teacher_dir)
    history = json.loads((workdir / "history.json").read_text())
    assert len(history["losses"]["student"]) == 3
    assert (workdir / "loss.png").stat().st_size > 0
    assert not (workdir / "checkpoint").exists()  # done: nothing left to resume
    (pair_file,) = workdir.glob("pairs/*/pairs_0000.safetensors")
    made = pair_file.stat().st_mtime_ns

    # Another student from the same teacher and pair settings learns from the same pairs.
    again = run_cli(
        "distill", "--teacher", teacher_dir, "--workdir", workdir, *ARGS, "--out", tmp_path / "s2"
    )
    assert again.exit_code == 0, again.stdout + again.stderr
    assert pair_file.stat().st_mtime_ns == made
    assert (tmp_path / "s2" / "vae").is_dir()  # a whole model folder without the flag

    # A student is not a teacher.
    refused = run_cli("distill", "--teacher", student_dir, "--workdir", tmp_path / "w2", *ARGS)
    assert (
        refused.exit_code != 0 and "already a distilled student" in refused.stdout + refused.stderr
    )


def test_distill_refuses_to_overwrite_a_stopped_run_unless_resumed(run_cli, tmp_path) -> None:
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "state.json").write_text("{}")
    result = run_cli("distill", "--workdir", tmp_path, *ARGS)
    assert result.exit_code != 0 and "--resume" in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_distill_refuses_to_guide_controls_without_guidance(run_cli, tmp_path) -> None:
    result = run_cli(
        "distill", "--workdir", tmp_path / "w", *ARGS, "--guide-controls", "--guidance", "0"
    )
    assert result.exit_code != 0
    assert "--guide-controls" in result.stdout + result.stderr
    assert not (tmp_path / "w").exists()
