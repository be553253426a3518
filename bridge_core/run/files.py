"""Run outputs: generated frames as PNG bytes, label links, the run lock.

Files are written through bridge_core.outputs (atomic, inside the run folder), so a run
killed at any moment leaves whole files or hidden temporaries that the next run sweeps
away, and a rename replaces a label link itself, never the input file it points at.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from bridge_core.errors import BridgeError
from bridge_core.outputs import atomic_path, png_flags, temp_path

log = logging.getLogger(__name__)

LabelMode = Literal["symlink", "copy"]
LOCK_FILE = ".lock"


# Generated frames are photographs, whose filtered rows hold few long repeats: zlib's
# run-length strategy encodes them 10% faster into files 2-18% smaller (measured on
# Cosmos example frames and on blurred YCB frames at 1280x704) and decodes as fast.
# Rendered pictures with flat regions are another matter (png_flags' default suits them).
_GENERATED_PNG_FLAGS = [*png_flags(), cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def encode_png(picture: np.ndarray) -> bytes:
    """Generated frame [H,W,3] uint8 RGB (or [H,W] grey) -> PNG bytes; the same bytes for
    the same picture."""
    if picture.ndim == 3:
        picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", picture, _GENERATED_PNG_FLAGS)
    if not ok:
        raise OSError("PNG encoding failed")
    return data.tobytes()


def label_mode(folder: Path) -> LabelMode:
    """ "symlink" where ``folder``'s file system takes symbolic links, else "copy".

    Links cost no space and show where each label came from; some file systems
    (FAT/exFAT drives, some network shares, Windows without developer mode) refuse
    them, and copies are the only way to a self-contained dataset there.
    """
    probe = temp_path(folder / "probe")
    try:
        os.symlink(LOCK_FILE, probe)
    except (OSError, NotImplementedError):
        return "copy"
    probe.unlink()
    return "symlink"


def place_label(source: Path, link: Path, mode: LabelMode, root: Path) -> None:
    """Make ``source`` (an input label file) available at ``link`` under ``root``:
    relative link or copy.

    A relative link keeps working when the dataset folder is moved or mounted elsewhere.
    """
    with atomic_path(link, root) as tmp:
        if mode == "symlink":
            os.symlink(os.path.relpath(source, link.parent), tmp)
        else:
            shutil.copyfile(source, tmp)


class RunLockedError(BridgeError):
    """Another run is writing into the same run folder."""


class RunLock:
    """An exclusive lock on a run folder: a file holding "pid host", never seen empty.

    The content is written to a temporary file first and hard-linked to the lock name,
    which fails if the lock exists, so a process killed at any moment leaves either no
    lock or a whole one (where hard links are refused, O_EXCL creation is used, and an
    empty lock older than STALE_EMPTY_S counts as left by a kill). A lock left by a
    process that no longer exists on this host is taken over with a warning; a live one
    is refused with a message naming its pid.
    """

    STALE_EMPTY_S = 10.0

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self.held = False

    def _owner(self) -> tuple[int, str] | None:
        try:
            pid_text, host = self.path.read_text().split(maxsplit=1)
            return int(pid_text), host.strip()
        except (FileNotFoundError, ValueError):
            return None

    def _create(self) -> bool:
        """Create the lock; False if it exists."""
        content = f"{os.getpid()} {socket.gethostname()}\n"
        tmp = temp_path(self.path)
        tmp.write_text(content)
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as file:
                file.write(content)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def acquire(self) -> None:
        for _ in range(2):
            if self._create():
                self.held = True
                return
            self._take_over_if_stale()
        raise RunLockedError(f"{self.path}: could not take the run lock; try again")

    def _take_over_if_stale(self) -> None:
        owner = self._owner()
        folder = self.path.parent
        if owner is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return  # released meanwhile: try again
            if age < self.STALE_EMPTY_S:
                raise RunLockedError(
                    f"another cosmos-bridge run is starting in {folder}; wait for it, or "
                    f"delete {self.path} if no run is active"
                )
            log.warning("taking over an empty lock a killed run left: %s", self.path)
        else:
            self.refuse_if_held(owner)
            log.warning(
                "taking over the lock of run pid %d, which is gone: %s", owner[0], self.path
            )
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def refuse_if_held(self, owner: tuple[int, str] | None = None) -> None:
        """RunLockedError if a run that is still alive holds the lock. Only reads, so it
        can be asked before any work (a model load) and before the folder exists."""
        pid, host = owner or self._owner() or (0, "")
        if host and (host != socket.gethostname() or _alive(pid)):
            raise RunLockedError(
                f"another cosmos-bridge run (pid {pid} on {host}) is writing to "
                f"{self.path.parent}; wait for it to finish or use another output.run_name "
                f"(delete {self.path} only if that run is gone)"
            )

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (always assumed on Windows)."""
    if os.name == "nt":
        # os.kill there terminates the process whatever the signal: never probe with it.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
