"""Stopping and resuming: Ctrl-C, SIGKILL at random points, the run lock."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from run_helpers import CappedModel, InterruptingModel, file_hashes, starter

import bridge_core
from bridge_core.outputs import is_temp_name
from bridge_core.run import loop
from bridge_core.run.files import LOCK_FILE, RunLock, RunLockedError
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job

SAMPLE = Path(bridge_core.__file__).resolve().parents[1] / "samples" / "datasets" / "warehouse_tiny"
WORKER = Path(__file__).with_name("run_worker.py")


def _run_files(run_dir: Path) -> dict[str, str]:
    """Content of every output but run.json (its timing differs), links followed."""
    return {k: v for k, v in file_hashes(run_dir, skip_runs=False).items() if k != "run.json"}


def _links(run_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(run_dir).as_posix(): os.readlink(p)
        for p in run_dir.rglob("*")
        if p.is_symlink()
    }


def _manifest_outputs(run_dir: Path) -> list[str]:
    lines = (run_dir / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line)["output"] for line in lines]


def _rgb_files(run_dir: Path) -> set[str]:
    return {
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("rgb_*.png")
        if "report" not in p.relative_to(run_dir).parts
    }


def _leftovers(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if is_temp_name(p.name) or p.name == LOCK_FILE]


def test_ctrl_c_after_two_clips_resumes_without_losing_or_duplicating(
    tmp_path, ycb, tiny_resolved, small_model
) -> None:
    reference = Path(shutil.copytree(ycb, tmp_path / "reference"))
    spec = starter(ycb)
    interrupting = replace(tiny_resolved, model=InterruptingModel(tiny_resolved.model, after=2))
    with pytest.raises(KeyboardInterrupt):
        run_job(spec, interrupting)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    # Two clip-variations were whole: Replicator_03 (1 frame) in both variations.
    assert sorted(_manifest_outputs(run_dir)) == sorted(_rgb_files(run_dir))
    assert len(_manifest_outputs(run_dir)) == 2
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert not _leftovers(run_dir)

    resumed = run_job(spec, small_model)
    assert (resumed.generated, resumed.skipped) == (10, 2)
    outputs = _manifest_outputs(run_dir)
    assert len(outputs) == len(set(outputs)) == 12

    run_job(starter(reference), small_model)
    assert _run_files(run_dir) == _run_files(reference / RUNS_FOLDER / "first_run")


def _ctrl_c() -> None:
    """SIGINT to the main thread itself: os.kill may hand it to any of the process's
    threads (torch's, OpenCV's), and Python would then run the handler a moment later."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def test_ctrl_c_while_a_clip_is_written_leaves_that_clip_whole(
    ycb, tiny_resolved, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real SIGINTs during the second clip's generation and just after, while the writer
    thread is still writing the first clip: the run stops after writing that clip whole
    (and only then unlocks the run folder and records how it ended)."""
    written: list[float] = []
    write_frame = loop._write_frame

    def slow_write(*args) -> None:
        time.sleep(0.5)  # a large frame on a slow disk
        write_frame(*args)
        written.append(time.perf_counter())

    monkeypatch.setattr(loop, "_write_frame", slow_write)
    pressed: list[float] = []

    class CtrlCModel(CappedModel):
        def generate(self, *args):
            if self.calls == 2:  # the second clip (the first has one frame, two variations)
                pressed.append(time.perf_counter())
                # Ctrl-C, and again a moment later while the run waits for the writer.
                threading.Timer(0.2, _ctrl_c).start()
                _ctrl_c()
                time.sleep(5)
            return super().generate(*args)

    # Python's own handler, whatever earlier tests in this worker left.
    original = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_job(starter(ycb), replace(tiny_resolved, model=CtrlCModel(tiny_resolved.model)))
    finally:
        signal.signal(signal.SIGINT, original)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    assert len(written) == 2 and written[-1] > pressed[0]  # the writer was still at work
    assert sorted(_manifest_outputs(run_dir)) == sorted(_rgb_files(run_dir))
    assert len(_manifest_outputs(run_dir)) == 2
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert not _leftovers(run_dir)


def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    def prepare(name: str) -> tuple[Path, Path]:
        dataset = Path(shutil.copytree(SAMPLE, tmp_path / name / "warehouse"))
        spec = starter(dataset, input={"clip_length": 2})
        return dataset.parent / "warehouse.yaml", dataset / RUNS_FOLDER / spec.output.run_name

    def worker(spec: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(WORKER), str(spec)], stderr=subprocess.PIPE)

    reference_spec, reference = prepare("reference")
    assert worker(reference_spec).wait(timeout=120) == 0
    total = len(_manifest_outputs(reference))

    spec, run_dir = prepare("killed")
    rng = random.Random(7)
    kills = 0
    manifest = run_dir / "manifest.jsonl"

    def lines() -> int:
        return manifest.read_text().count("\n") if manifest.exists() else 0

    while kills < 6:
        # Kill once a few more frames are recorded, a random moment later: inside
        # generation, between a frame's files, or during a clip's report.
        target = lines() + rng.randint(1, 3)
        assert target < total, "the run finished before six kills; give it more frames"
        process = worker(spec)
        deadline = time.monotonic() + 60
        while process.poll() is None and lines() < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        assert process.poll() is None, "the worker ended before it was killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        outputs = _manifest_outputs(run_dir)
        assert len(outputs) == len(set(outputs))
    finished = worker(spec)
    _, stderr = finished.communicate(timeout=120)
    assert finished.returncode == 0, stderr.decode()

    assert _run_files(run_dir) == _run_files(reference)
    assert _links(run_dir) == _links(reference)
    outputs = _manifest_outputs(run_dir)
    assert len(outputs) == len(set(outputs)) == total
    assert not _leftovers(run_dir)


def test_a_second_run_into_the_same_folder_is_refused(ycb, small_model) -> None:
    spec = starter(ycb)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    run_dir.mkdir(parents=True)
    with RunLock(run_dir):
        with pytest.raises(RunLockedError, match=rf"pid {os.getpid()} .* is writing to"):
            run_job(spec, small_model)
        assert os.listdir(run_dir) == [LOCK_FILE]
    assert small_model.model.calls == 0


def test_the_lock_of_a_dead_run_is_taken_over(ycb, small_model, caplog) -> None:
    spec = starter(ycb)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    run_dir.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run_dir / LOCK_FILE).write_text(f"{gone.pid} {socket.gethostname()}\n")
    with caplog.at_level(logging.WARNING):
        result = run_job(spec, small_model, frames=(0, 1))
    assert result.generated == 6
    assert f"taking over the lock of run pid {gone.pid}" in caplog.text
    assert not (run_dir / LOCK_FILE).exists()


def test_an_empty_lock_is_refused_while_fresh_and_taken_over_when_old(ycb, small_model) -> None:
    # Where hard links are refused, a kill between creating and writing the lock leaves it empty.
    spec = starter(ycb)
    run_dir = ycb / RUNS_FOLDER / "first_run"
    run_dir.mkdir(parents=True)
    lock = run_dir / LOCK_FILE
    lock.touch()
    with pytest.raises(RunLockedError, match="another cosmos-bridge run is starting"):
        run_job(spec, small_model)
    old = time.time() - 2 * RunLock.STALE_EMPTY_S
    os.utime(lock, (old, old))
    assert run_job(spec, small_model, frames=(0, 1)).generated == 6
    assert not lock.exists()


@pytest.mark.parametrize("tail", [b"", b"caf\xe9 in latin-1\n"], ids=["cut", "and not utf-8"])
def test_a_manifest_cut_inside_a_character_loads_its_whole_lines(tmp_path, tail) -> None:
    """A kill mid-append can cut a non-ASCII prompt's character in half; a line that is
    not UTF-8 at all is as unreadable as a torn one. Both are dropped, the rest kept."""
    from bridge_core.run.manifest import MANIFEST_FILE, Manifest, ManifestEntry

    def entry(output: str) -> ManifestEntry:
        return ManifestEntry(output, None, "cam", 0, "v", "brouillard épais", 1, "c", "g", "s")

    whole = entry("a.png").line().encode("utf-8")
    torn = entry("b.png").line().encode("utf-8")
    cut = torn[: torn.index("é".encode()) + 1]  # the first byte of a two-byte character
    (tmp_path / MANIFEST_FILE).write_bytes(whole + tail + cut)
    (tmp_path / "a.png").write_bytes(b"frame")  # a rewrite keeps entries whose file is there
    manifest = Manifest(tmp_path)
    assert list(manifest.entries) == ["a.png"]
    assert (tmp_path / MANIFEST_FILE).read_bytes() == whole
