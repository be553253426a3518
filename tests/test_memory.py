"""The CLI keeps freed memory for reuse instead of mapping it afresh (bridge_core/memory.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux /proc")

# Allocates 64 MB, touches it, frees it, then reports the resident memory kept (MB).
_PROBE = """
import sys
import numpy as np
from bridge_core.memory import reuse_freed_memory

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
before = resident_mb()
a = np.ones(64 * 2**20, np.uint8)
del a
print(resident_mb() - before)
"""


def _kept_mb(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def test_freed_memory_is_kept_for_reuse() -> None:
    assert _kept_mb("default") < 16  # glibc unmaps a freed 64 MB array at once
    assert _kept_mb("reuse") > 48  # with the setting, the process keeps it


def test_the_cli_entry_point_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge_core import cli

    asked = []
    monkeypatch.setattr(cli, "reuse_freed_memory", lambda: asked.append(1))
    monkeypatch.setattr(sys, "argv", ["cosmos-bridge", "--help"])
    cli.main()  # standalone_mode=False: --help returns
    assert asked == [1]
