"""Hostile inputs: running ``cosmos-bridge`` in-process with bounded memory and time, copies
of the sample datasets, and the check that a refused input left every file as it was."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hostile_helpers import (
    CACHE,
    MEMORY_HEADROOM,
    TIME_LIMIT_S,
    WAREHOUSE,
    YCB,
    differences,
    snapshot,
)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def _data_size() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmData:\s+(\d+)", status).group(1)) * 1024


class CommandTimeout(Exception):
    pass


@contextlib.contextmanager
def _bounded() -> Iterator[None]:
    """Lower the soft RLIMIT_DATA to headroom above the current use, and arm an alarm."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = _data_size() + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    lowered = soft == resource.RLIM_INFINITY or soft > limit
    if lowered:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))

    def on_alarm(signum, frame):
        raise CommandTimeout(f"the command did not finish within {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if lowered:
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


@pytest.fixture
def cli(capfd, monkeypatch, tmp_path):
    """Run ``cosmos-bridge ARGS`` in this process, from an empty working folder inside the
    test's folder. stdout/stderr are captured at the file descriptors, so what C libraries
    (FFmpeg, USD) print counts too. An exception escaping ``main()`` is what a user sees
    as a traceback: it is appended to stderr and the exit code is 1."""
    from bridge_core.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / CACHE))
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)

    def run(*args: object) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["cosmos-bridge", *map(str, args)])
        code, crash = 0, ""
        with _bounded():
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:
                code, crash = 1, traceback.format_exc()
        out, err = capfd.readouterr()
        return CliResult(code, out, err + crash)

    return run


def _tail(text: str, lines: int = 14) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(line[:400] for line in kept)


@pytest.fixture
def refuses(cli, tmp_path):
    """``refuses(offending, *args, absent=())`` runs ``cosmos-bridge ARGS`` and checks what
    a user should see: exit code 2, one line on stderr naming ``offending`` (a Path: its
    path or its name; a str: that text), no traceback, every file under the test's folder
    (inputs, outputs, working folder) exactly as before, and no path of ``absent``."""

    def check(offending: Path | str, *args: object, absent: tuple[Path, ...] = ()) -> CliResult:
        __tracebackhide__ = True
        before = snapshot(tmp_path)
        result = cli(*args)
        after = snapshot(tmp_path)
        print(f"exit {result.exit_code}; stderr: {_tail(result.stderr, 3)}")  # shown by -rP
        problems = []
        if result.exit_code != 2:
            problems.append(f"exit code {result.exit_code}, expected 2")
        if "Traceback" in result.stderr:
            problems.append("a traceback on stderr")
        lines = result.stderr.strip().splitlines()
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected one error line")
        names = (str(offending), offending.name) if isinstance(offending, Path) else (offending,)
        if not any(name in result.stderr for name in names):
            problems.append(f"stderr does not name {' or '.join(repr(n) for n in names)}")
        diff = differences(before, after)
        if diff:
            shown = diff[:6] + ([f"  ... and {len(diff) - 6} more"] if len(diff) > 6 else [])
            problems.append("files changed under the test folder:\n" + "\n".join(shown))
        present = [str(p) for p in absent if os.path.lexists(p)]
        if present:
            problems.append(f"written though it should not exist: {', '.join(present)}")
        assert not problems, (
            "cosmos-bridge "
            + " ".join(map(str, args))
            + "\n- "
            + "\n- ".join(problems)
            + f"\n--- stderr (last lines) ---\n{_tail(result.stderr)}"
            + f"\n--- stdout (last lines) ---\n{_tail(result.stdout)}"
        )
        return result

    return check


# ---------------------------------------------------------------------------
# Inputs: copies of the real samples, never the samples themselves.


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """A copy of the bundled warehouse_tiny BasicWriter dataset: cameras Replicator and
    Replicator_01, frames 0-7, 96x54, rgb, depth, semantic/instance, normals, camera."""
    return Path(shutil.copytree(WAREHOUSE, tmp_path / "warehouse", symlinks=True))


@pytest.fixture
def ycb(tmp_path) -> Path:
    """A copy of the real YCB BasicWriter capture (Replicator_03/04/05, 512x512)."""
    return Path(shutil.copytree(YCB, tmp_path / "ycb", symlinks=True))


# ---------------------------------------------------------------------------
# ``run`` without the real model: the tiny random one, resolved once.


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    import torch

    from bridge_core.run.models import resolve_model
    from bridge_core.spec.models import ModelSpec

    torch.set_num_threads(1)
    resolved = resolve_model(ModelSpec(id="tiny"))
    resolved.model.prompt_cache.folder = tmp_path_factory.mktemp("prompt-cache")
    return resolved


@pytest.fixture
def fake_model(monkeypatch, tiny_model):
    from bridge_core.run import models

    monkeypatch.setattr(models, "resolve_model", lambda spec, model_id=None: tiny_model)
    return tiny_model


@pytest.fixture
def job(cli, warehouse, tmp_path, fake_model) -> dict:
    """``cosmos-bridge init``'s spec for the warehouse copy as a user trims it: one step,
    camera Replicator, frames 0:1, one variation. Edit the dict, then ``write_yaml`` it to
    ``tmp_path / "job.yaml"``."""
    spec = tmp_path / "job.yaml"
    result = cli("init", warehouse, "-o", spec)
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(spec.read_text())
    spec.unlink()
    data["input"].update(cameras=["Replicator"], frames="0:1")
    data["model"].update(id="tiny", num_steps=1)
    data["variations"] = data["variations"][:1]
    return data
