"""carb: logging (recorded in ``messages`` so tests can read what a user would see)."""

from __future__ import annotations

messages: list[tuple[str, str]] = []


def log_info(msg: str) -> None:
    messages.append(("info", msg))


def log_warn(msg: str) -> None:
    messages.append(("warn", msg))


def log_error(msg: str) -> None:
    messages.append(("error", msg))
