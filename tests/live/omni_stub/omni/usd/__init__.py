"""omni.usd: the open stage (a pxr Usd.Stage; tests set ``stage``)."""

from __future__ import annotations

from typing import Any

stage: Any = None


class _Context:
    def get_stage(self) -> Any:
        return stage


def get_context() -> _Context:
    return _Context()
