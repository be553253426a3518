"""Plain helpers of the hostile-input tests: where the samples are, hashing a tree."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
REALDATA = REPO.parent / "shared" / "realdata"
YCB = REALDATA / "replicator-basicwriter-ycb"
WAREHOUSE = REPO / "samples" / "datasets" / "warehouse_tiny"
TRANSFER1_ASSETS = REALDATA / "cosmos-transfer1-assets" / "assets"
WAREHOUSE_SCENE = REPO / "samples" / "scenes" / "warehouse.usda"

# A hostile file may make a reader allocate or read without end (/dev/zero, a header that
# claims 160 GB): each command gets this much memory beyond what the test process holds,
# and this long, so such a case fails with MemoryError or TimeoutError instead of taking
# the machine down.
MEMORY_HEADROOM = 3 * 2**30
TIME_LIMIT_S = 30
# Not part of what the tests watch: the prompt-embedding cache.
CACHE = "cache"


# ---------------------------------------------------------------------------
# What is on disk, to compare before and after.


def _entry(path: Path) -> str:
    info = os.lstat(path)
    mode = oct(stat.S_IMODE(info.st_mode))
    if stat.S_ISLNK(info.st_mode):
        return f"link -> {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"folder {mode}"
    if stat.S_ISREG(info.st_mode):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except PermissionError:  # a chmod 000 file, when not root
            digest = f"unreadable, {info.st_size} bytes, mtime {info.st_mtime_ns}"
        return f"file {mode} {digest}"
    return f"special {stat.S_IFMT(info.st_mode):o} {mode}"  # FIFO, device: never opened


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> kind, mode and sha256 of everything under ``root`` (links not
    followed, special files not opened), the prompt cache left out."""
    entries = {}
    for parent, dirs, names in os.walk(root):
        if Path(parent) == root and CACHE in dirs:
            dirs.remove(CACHE)
        for name in (*dirs, *names):
            path = Path(parent, name)
            entries[path.relative_to(root).as_posix()] = _entry(path)
    return entries


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    lines = [f"  written: {p} ({after[p]})" for p in sorted(after.keys() - before.keys())]
    lines += [f"  removed: {p}" for p in sorted(before.keys() - after.keys())]
    lines += [
        f"  changed: {p} ({before[p]} -> {after[p]})"
        for p in sorted(before.keys() & after.keys())
        if before[p] != after[p]
    ]
    return lines


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
