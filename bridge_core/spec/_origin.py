"""Where a spec came from, so every error can name the file and the line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridge_core.errors import SpecError


@dataclass(frozen=True)
class SpecOrigin:
    """A spec file, and the line of it for JSONL files (1-based)."""

    path: Path | None
    line: int | None = None

    @property
    def folder(self) -> Path | None:
        """The folder relative paths in the spec resolve against."""
        return self.path.parent if self.path is not None else None

    def describe(self) -> str:
        """``"name.jsonl line 3"``, ``"name.yaml"``, or ``"<data>"`` for a spec given as data."""
        name = self.path.name if self.path is not None else "<data>"
        return f"{name} line {self.line}" if self.line is not None else name

    def error(
        self, message: str, field: str | None = None, kind: type[SpecError] = SpecError
    ) -> SpecError:
        """A ``kind`` error naming the file, the field and, in a JSONL file, the line."""
        if self.line is not None:
            message = f"line {self.line}: {message}"
        return kind(message, path=self.path, field=field)
