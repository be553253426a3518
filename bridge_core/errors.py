"""The errors bridge_core raises, in one place.

Every error a user can cause (a missing file, a corrupt picture, a spec field with
a wrong value) is a :class:`BridgeError` whose message names the file and, where
there is one, the field. The CLI prints that one line and exits non-zero; library
callers catch :class:`BridgeError`.
"""

from __future__ import annotations

import errno
from pathlib import Path


class BridgeError(Exception):
    """Base class of every error bridge_core raises on purpose."""


class InputError(BridgeError):
    """Something the user gave us (a file, a folder, a value) cannot be used.

    ``path`` is the offending file or folder, ``field`` the spec field or data key.
    """

    def __init__(self, message: str, path: Path | str | None = None, field: str | None = None):
        self.path = Path(path) if path is not None else None
        self.field = field
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if field:
            where.append(field)
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class DatasetError(InputError):
    """A dataset folder or one of its files is missing, unreadable or inconsistent."""


class SpecError(InputError):
    """A job spec (ours or a Cosmos-Transfer one) is invalid or asks for something unsupported."""


class UnsupportedFeatureError(SpecError):
    """A Cosmos-Transfer spec uses a feature this project does not implement."""


def describe_os_error(exc: OSError) -> str:
    """One line for a failure of the machine rather than of the input (a full disk, a
    folder without permission), naming the file and saying what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{where}no space left on the device; free some space or write elsewhere, then "
            "run again (a run resumes where it stopped)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}permission denied; give this user access or choose another folder"
    if exc.errno == errno.EROFS:
        return f"{where}the file system is read-only; choose a folder you can write to"
    return f"{where}{exc.strerror or exc}"
