"""Frame-parallel loops: numpy and OpenCV release the GIL, so one thread per core pays."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cv2


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_opencv_lock = threading.Lock()
_opencv_users = 0
_opencv_threads = 0  # what OpenCV had before the first of the current users


@contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """OpenCV's own worker threads, inside ours, would oversubscribe the cores.

    Counted, because loops on two threads at once (the run loop reads the next clip
    while the current one is written) would otherwise restore each other's setting.
    """
    global _opencv_users, _opencv_threads
    with _opencv_lock:
        if _opencv_users == 0:
            _opencv_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _opencv_users += 1
    try:
        yield
    finally:
        with _opencv_lock:
            _opencv_users -= 1
            if _opencv_users == 0:
                cv2.setNumThreads(_opencv_threads)


def for_each_frame(work: Callable[[int], object], count: int) -> None:
    """Call ``work(t)`` for t in range(count), frames (or other independent pieces, such
    as the capture's bands of rows) spread over the cores.

    ``work`` writes its results into arrays the caller owns; the first error raised
    by any frame is re-raised here.
    """
    workers = min(cpu_cores(), count)
    if workers <= 1:
        for t in range(count):
            work(t)
        return
    with single_threaded_opencv(), ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(work, range(count)):
            pass
