"""carb.settings: a path-keyed store (the extension.toml [settings] land here in Kit)."""

from __future__ import annotations

from typing import Any


class _Settings:
    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, path: str) -> Any:
        return self._values.get(path)

    def set(self, path: str, value: Any) -> None:
        self._values[path] = value


_settings = _Settings()


def get_settings() -> _Settings:
    return _settings
