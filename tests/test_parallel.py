"""for_each_frame: every piece once, spread over threads, errors where they belong."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bridge_core import parallel
from bridge_core.parallel import for_each_frame


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "cpu_cores", lambda: 2)


def test_every_piece_runs_once_and_the_caller_works_too() -> None:
    seen: list[int] = []
    threads: set[str] = set()

    def work(t: int) -> None:
        time.sleep(0.01)
        seen.append(t)
        threads.add(threading.current_thread().name)

    for_each_frame(work, 20)
    assert sorted(seen) == list(range(20))
    assert threading.current_thread().name in threads
    assert len(threads) == 2


def test_the_first_error_is_raised_and_no_piece_starts_after_it() -> None:
    started: list[int] = []

    def work(t: int) -> None:
        started.append(t)
        time.sleep(0.005)
        if t == 3:
            raise ValueError("frame 3 is corrupt")

    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        for_each_frame(work, 100)
    # Pieces are taken in order: besides 0-3, only the one in flight on the other thread.
    assert len(started) <= 5


def test_a_loop_inside_a_piece_finishes() -> None:
    done = np.zeros((4, 6), dtype=bool)

    def work(t: int) -> None:
        for_each_frame(lambda u: done.__setitem__((t, u), True), 6)

    for_each_frame(work, 4)
    assert done.all()


def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    import os
    import signal

    for_each_frame(lambda t: None, 4)  # the parent's pool exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's pool threads did not come along
        signal.alarm(10)  # a child left waiting on them dies instead of hanging the test
        done = np.zeros(8, dtype=bool)
        for_each_frame(lambda t: done.__setitem__(t, True), 8)
        os.write(write, b"1" if done.all() else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0
