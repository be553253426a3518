"""omni.usd: the open stage (a pxr Usd.Stage; tests set ``stage``; open_stage records the
path it was asked to open in ``opened``)."""

from __future__ import annotations

from typing import Any

stage: Any = None
opened: list[str] = []


class _Context:
    def get_stage(self) -> Any:
        return stage

    def open_stage(self, path: str) -> bool:
        opened.append(path)
        return True


def get_context() -> _Context:
    return _Context()
