"""A job on a local Ray cluster (2 CPU workers, no network): the same folder as the run
in one process, a SIGKILLed worker replaced without losing or repeating a frame, a rerun
that skips everything, and a bad frame's error as the run in one process gives it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from run_helpers import file_hashes, starter

from bridge_core.errors import BridgeError
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job
from bridge_core.spec.models import RaySpec

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")

from bridge_core.run.distributed import run_job_on_ray  # noqa: E402

HERE = Path(__file__).resolve().parent
TWO_WORKERS = RaySpec(workers=2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray cluster on this machine, its workers able to import the test models."""
    cache = tmp_path_factory.mktemp("ray-prompt-cache")
    os.environ["RAY_TEST_CACHE"] = str(cache)
    pythonpath = os.pathsep.join([str(HERE), str(HERE.parents[1])])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "RAY_TEST_CACHE": str(cache)}},
    )
    yield
    ray.shutdown()


def _in_process(spec) -> tuple[dict[str, str], dict[str, str], dict]:
    """The run in one process: its files' hashes, its links and run.json; then removed."""
    from ray_models import capped_tiny

    run_dir = run_job(spec, capped_tiny()).run_dir
    seen = _hashes(run_dir), _links(run_dir), _run_record(run_dir)
    shutil.rmtree(run_dir)
    return seen


def _links(run_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(run_dir).as_posix(): os.readlink(p)
        for p in run_dir.rglob("*")
        if p.is_symlink()
    }


def _hashes(run_dir: Path) -> dict[str, str]:
    return {k: v for k, v in file_hashes(run_dir, skip_runs=False).items() if k != "run.json"}


def _run_record(run_dir: Path) -> dict:
    record = json.loads((run_dir / "run.json").read_text())
    record.pop("timing")
    return record


def _manifest_outputs(run_dir: Path) -> list[str]:
    lines = (run_dir / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line)["output"] for line in lines]


def test_ray_run_writes_the_same_bytes_as_one_process(cluster, ycb, tmp_path) -> None:
    from ray_models import capped_tiny

    spec = starter(ycb)
    expected, expected_links, expected_record = _in_process(spec)

    result = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)

    items = len(expected_record["metrics"]["clips"]) * len(spec.variations)
    assert items >= 6  # 3 cameras, 2 variations
    assert result.generated == result.total and result.skipped == 0
    assert _hashes(result.run_dir) == expected  # frames, manifest, labels, report
    assert _links(result.run_dir) == expected_links and expected_links
    record = _run_record(result.run_dir)
    workers = record.pop("workers")
    assert record == expected_record
    assert len(workers["pool"]) == 2
    assert sum(w["items"] for w in workers["pool"]) == items
    assert all(w["frames_per_second"] for w in workers["pool"] if w["items"])

    before = {p: p.stat().st_mtime_ns for p in result.run_dir.rglob("*") if p.is_file()}
    again = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)
    assert again.generated == 0 and again.skipped == result.total
    after = {p: p.stat().st_mtime_ns for p in result.run_dir.rglob("*") if p.is_file()}
    changed = [p.name for p in after if after[p] != before.get(p)]
    assert changed == ["run.json"]
    assert _hashes(result.run_dir) == expected


def test_ray_gates_as_one_process_does(cluster, ycb) -> None:
    """The tiny model's frames are noise: on Ray too every clip is tried twice, then kept
    under rejected/, with the same bytes and manifest as in one process."""
    from ray_models import capped_tiny

    spec = starter(ycb, quality={})
    expected, _links, expected_record = _in_process(spec)
    result = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)
    assert result.generated == 0 and result.rejected == result.total
    assert _hashes(result.run_dir) == expected
    assert not any(
        p.name.startswith("rgb_")
        for v in ("sunny", "overcast_dusk")
        for p in (result.run_dir / v).rglob("*")
    )
    tries = [
        json.loads(line) for line in (result.run_dir / "manifest.jsonl").read_text().splitlines()
    ]
    assert len(tries) == 2 * len(expected_record["metrics"]["clips"]) * len(spec.variations)
    assert not any(t["accepted"] for t in tries)
    record = _run_record(result.run_dir)
    record.pop("workers")
    assert record == expected_record


def test_a_killed_worker_is_replaced_and_no_frame_is_lost_or_repeated(
    cluster, ycb, tmp_path
) -> None:
    from ray_models import slow_tiny

    spec = starter(ycb)
    expected, expected_links, _record = _in_process(spec)
    pids = tmp_path / "pids"
    pids.mkdir()
    killed: list[int] = []

    def kill_the_first_worker_that_generates() -> None:
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for path in pids.iterdir():
                os.kill(int(path.name), signal.SIGKILL)
                killed.append(int(path.name))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_worker_that_generates)
    killer.start()
    try:
        result = run_job_on_ray(spec, functools.partial(slow_tiny, pids), ray_spec=TWO_WORKERS)
    finally:
        killer.join()

    assert killed, "no worker was seen generating"
    assert result.generated == result.total
    outputs = _manifest_outputs(result.run_dir)
    assert len(outputs) == len(set(outputs)) == result.total
    assert _hashes(result.run_dir) == expected
    assert _links(result.run_dir) == expected_links
    pool = json.loads((result.run_dir / "run.json").read_text())["workers"]["pool"]
    assert sum(w["restarts"] for w in pool) >= 1


def test_a_bad_frame_stops_the_job_with_the_in_process_error(cluster, ycb, tmp_path) -> None:
    from ray_models import capped_tiny

    spec = starter(ycb)
    bad = ycb / "Replicator_05" / "rgb" / "rgb_0000.png"
    data = bytearray(bad.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 60] = bytes(20)  # the header stays whole: only decoding fails
    bad.write_bytes(bytes(data))
    with pytest.raises(BridgeError) as in_process:
        run_job(spec, capped_tiny())
    shutil.rmtree(ycb / RUNS_FOLDER)

    with pytest.raises(BridgeError) as on_ray:
        run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)

    assert type(on_ray.value) is type(in_process.value)
    assert str(on_ray.value) == str(in_process.value)
    assert "Replicator_05" in str(on_ray.value)
    run_dir = ycb / RUNS_FOLDER / spec.output.run_name
    outputs = _manifest_outputs(run_dir)
    assert outputs, "what was done before the bad clip stays"
    assert not [o for o in outputs if "Replicator_05" in o]
    written = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("rgb_*.png")}
    assert set(outputs) <= written
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_run_command_takes_ray_and_says_how_many_workers(cluster, run_cli, ycb, tmp_path) -> None:
    spec_path = tmp_path / "job.yaml"
    assert run_cli("init", ycb, "-o", spec_path).exit_code == 0
    data = yaml.safe_load(spec_path.read_text())
    data["model"]["num_steps"] = 1
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))

    result = run_cli(
        "run",
        spec_path,
        "--model",
        "tiny",
        "--frames",
        "0:1",
        "--ray",
        "auto",
        "--ray-workers",
        "2",
    )

    assert result.exit_code == 0, result.stderr
    assert "RANDOM" in result.stdout  # the workers' model notes reach the user
    assert "2/2 workers" in result.stdout
    record = json.loads(next((ycb / RUNS_FOLDER).glob("*/run.json")).read_text())
    assert record["status"] == "complete" and len(record["workers"]["pool"]) == 2
    assert record["model"]["id"] == "tiny" and record["model"]["random_weights"]


class _StopAfter:
    """A progress bar whose user presses Ctrl-C once ``frames`` frames were written."""

    def __init__(self, frames: int):
        self.left = frames

    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, frames: int) -> None:
        self.left -= frames
        if self.left <= 0:
            raise KeyboardInterrupt


def test_a_stopped_driver_resumes_where_it_stopped(cluster, ycb) -> None:
    from ray_models import capped_tiny

    spec = starter(ycb)
    expected, expected_links, _record = _in_process(spec)

    with pytest.raises(KeyboardInterrupt):
        run_job_on_ray(spec, capped_tiny, progress=_StopAfter(3), ray_spec=TWO_WORKERS)
    run_dir = ycb / RUNS_FOLDER / spec.output.run_name
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    written = len(_manifest_outputs(run_dir))
    assert 3 <= written < 12

    resumed = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)

    # A variation cut in the middle of its clip is redone whole, as without Ray.
    assert 1 <= resumed.skipped <= written
    assert resumed.generated == resumed.total - resumed.skipped
    outputs = _manifest_outputs(run_dir)
    assert len(outputs) == len(set(outputs)) == resumed.total
    assert _hashes(run_dir) == expected and _links(run_dir) == expected_links


def test_a_report_lost_is_redone_from_the_frames_on_disk(cluster, ycb) -> None:
    from ray_models import capped_tiny

    spec = starter(ycb)
    first = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)
    expected = _hashes(first.run_dir)
    report = next(first.run_dir.glob("report/**/metrics.json")).parent
    shutil.rmtree(report)

    again = run_job_on_ray(spec, capped_tiny, ray_spec=TWO_WORKERS)

    assert again.generated == 0
    assert _hashes(first.run_dir) == expected  # the report's files, bytes included
