"""How the command-line process asks the C library to handle freed memory.

The run loop and the capture allocate big arrays for every clip and frame (a 720p float
control is 11 MB a frame). glibc's malloc maps each allocation that large afresh and unmaps
it when freed, so every use page-faults its memory in again, and page faults from several
threads queue on one per-process lock: the controls stage ran barely faster on two cores
than on one. Keeping freed memory for reuse removes that cost after the first clip
(bench/run.py on 2 cores, controls: 30 -> 19 ms per frame with 8-frame clips; with the
reference model's 93-frame clips, 5 GB of arrays each, 38-44 -> 17-19 ms). The peak is
unchanged; the process just does not hand memory back to the system until it exits.

This is process-wide, so only our own command-line entry point asks for it, never code
that runs inside someone else's process (Isaac Sim, a user's script).
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1  # mallopt takes an int: heap-allocate everything below 2 GiB
_NEVER = -1  # M_TRIM_THRESHOLD -1: never give the heap's free top back (mallopt(3))


def reuse_freed_memory() -> bool:
    """Ask glibc to serve large allocations from its heap and keep what is freed there.

    Returns False (and changes nothing) where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mapped = mallopt(_M_MMAP_THRESHOLD, _LARGEST)
    return bool(mapped) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER))
