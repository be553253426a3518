"""Frame-parallel loops: numpy and OpenCV release the GIL, so one thread per core pays."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
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


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_pool = threading.local()


def _shared_pool() -> ThreadPoolExecutor:
    """One pool for the process, one thread fewer than the cores (callers work too).

    Kept for the process's life: starting threads for each call cost about half a
    millisecond each, some 20 calls per clip.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(cpu_cores() - 1, 1),
                thread_name_prefix="frames",
                initializer=lambda: setattr(_in_pool, "worker", True),
            )
        return _pool


def _forget_pool_in_child() -> None:
    # A forked child has the pool object but none of its threads: start a new one there.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def for_each_frame(work: Callable[[int], object], count: int) -> None:
    """Call ``work(t)`` for t in range(count), frames (or other independent pieces, such
    as the capture's bands of rows) spread over the cores.

    The calling thread and the shared pool's threads take pieces in turn until none
    are left. ``work`` writes its results into arrays the caller owns; an error a piece
    raises is re-raised here, and no new pieces start after it. Called from inside a
    piece (on a pool thread), it runs in that thread alone.
    """
    helpers = min(cpu_cores(), count) - 1
    if helpers <= 0 or getattr(_in_pool, "worker", False):
        for t in range(count):
            work(t)
        return
    pieces = itertools.count()  # next() on it is atomic under the GIL
    failed = threading.Event()

    def take_pieces() -> None:
        for t in pieces:
            if t >= count or failed.is_set():
                return
            try:
                work(t)
            except BaseException:
                failed.set()
                raise

    with single_threaded_opencv():
        pool = _shared_pool()
        helping = [pool.submit(take_pieces) for _ in range(helpers)]
        try:
            take_pieces()
        finally:
            # Helpers still queued behind other callers' pieces have nothing left to take.
            for future in helping:
                future.cancel()
            wait(helping)
        for future in helping:
            if not future.cancelled():
                future.result()
