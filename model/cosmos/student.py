"""What a distilled student samples with: its own few noise levels, no guidance pass.

A student (transfer_model.cosmos.distillation) learns to jump from any of its noise
levels straight along the line to its teacher's result, so it runs in any step count
that divides the number of levels it was trained at, taking every k-th of them, on a
flow-matching Euler scheduler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


def student_sigmas(steps: int) -> tuple[float, ...]:
    """``steps`` noise levels evenly spaced from 1 (pure noise) down: 4 -> 1, .75, .5, .25."""
    if steps < 1:
        raise ValueError(f"a student needs at least 1 step, got {steps}")
    return tuple(1.0 - i / steps for i in range(steps))


@dataclass(frozen=True)
class StudentSchedule:
    """A student's noise levels (descending, the first 1.0) and where it came from.

    teacher: the teacher's id and revision (or folder); teacher_steps / teacher_guidance /
    teacher_guide_controls: how the teacher sampled the results the student learnt;
    method: the recipe's name.
    """

    sigmas: tuple[float, ...]
    teacher: str
    teacher_steps: int
    teacher_guidance: float
    teacher_guide_controls: bool = False
    method: str = "teacher-pair distillation"

    @property
    def steps(self) -> tuple[int, ...]:
        """Step counts it can run, most first: the divisors of its levels' number."""
        n = len(self.sigmas)
        return tuple(k for k in range(n, 0, -1) if n % k == 0)

    def check(self, num_steps: int, guidance: float) -> tuple[str, str] | None:
        """(spec field, why) for settings this student cannot honour, else None."""
        if num_steps not in self.steps:
            allowed = ", ".join(map(str, self.steps))
            return (
                "model.num_steps",
                f"this model is a {len(self.sigmas)}-step student of {self.teacher}: it samples "
                f"in {allowed} step(s), not {num_steps}",
            )
        if guidance != 0:
            return (
                "model.guidance",
                f"this model is a distilled student: the teacher's guidance "
                f"({self.teacher_guidance:g}) is built in, so it runs without a guidance pass; "
                f"set guidance to 0, not {guidance:g}",
            )
        return None

    def sigmas_for(self, num_steps: int) -> list[float]:
        """The levels a ``num_steps`` run steps through (ValueError if it cannot)."""
        problem = self.check(num_steps, 0.0)
        if problem is not None:
            raise ValueError(problem[1])
        return list(self.sigmas[:: len(self.sigmas) // num_steps])

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sigmas": list(self.sigmas)}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> StudentSchedule:
        return cls(**{**record, "sigmas": tuple(float(s) for s in record["sigmas"])})
