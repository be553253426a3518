"""omni.timeline: the stage's timeline, as scripts play and stop it."""

from __future__ import annotations


class _Timeline:
    def __init__(self) -> None:
        self._playing = False
        self._time = 0.0
        self._codes_per_second = 60.0

    def play(self) -> None:
        self._playing = True

    def pause(self) -> None:
        self._playing = False

    def stop(self) -> None:
        self._playing = False
        self._time = 0.0

    def is_playing(self) -> bool:
        return self._playing

    def get_current_time(self) -> float:
        return self._time

    def _tick(self) -> None:
        """What one frame of Kit's update loop does to the timeline (stand-in only)."""
        if self._playing:
            self._time += 1.0 / self._codes_per_second


_timeline = _Timeline()


def get_timeline_interface() -> _Timeline:
    return _timeline
