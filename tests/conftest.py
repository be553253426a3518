"""Shared test helpers: where the real third-party samples are, and running the CLI in-process."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
YCB = REALDATA / "replicator-basicwriter-ycb"
TRANSFER1_ASSETS = REALDATA / "cosmos-transfer1-assets" / "assets"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``cosmos-bridge ARGS`` in this process; returns exit code and captured output."""
    from bridge_core.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["cosmos-bridge", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
