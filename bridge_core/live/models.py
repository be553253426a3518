"""One loaded model kept between panel runs and previews: loading takes minutes."""

from __future__ import annotations

import importlib.metadata
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.spec.models import ModelSpec

# The ModelSpec fields that decide what is loaded; sampling fields (steps, guidance) do not.
_LOAD_FIELDS = {"id", "revision", "device", "dtype", "memory", "frames_per_chunk"}


def torch_copies(paths: Iterable[str]) -> list[Path]:
    """The folders on ``paths`` that hold an installed torch, in import order (first wins)."""
    found: list[Path] = []
    for dist in importlib.metadata.distributions(name="torch", path=list(paths)):
        folder = Path(str(dist.locate_file(""))).resolve()
        if folder not in found:
            found.append(folder)
    return found


def _second_torch_note(folders: list[Path]) -> str:
    listed = ", ".join(str(f) for f in folders)
    return (
        f"torch is installed {len(folders)} times on this Python's path ({listed}); Python "
        "imports the first. Isaac Sim ships its own torch (standalone and container: in "
        "omni.isaac.ml_archive's pip_prebundle); the other one was most likely downloaded by "
        "pip. Remove it as the extension's docs/README.md says (Troubleshooting)."
    )


class ModelCache:
    """The model of the last ModelSpec asked for; another spec replaces it (one in memory)."""

    def __init__(self, load: Callable[[ModelSpec], ResolvedModel] = resolve_model):
        self._load = load
        self._lock = threading.Lock()
        self._key: dict[str, object] | None = None
        self._model: ResolvedModel | None = None

    def get(self, spec: ModelSpec) -> ResolvedModel:
        """The model for ``spec``, loaded on first use (callable from any thread).

        A freshly loaded model's notes also say when torch is installed twice: by then
        the app has put every extension's packages on sys.path.
        """
        key = spec.model_dump(include=_LOAD_FIELDS)
        with self._lock:
            if self._model is None or key != self._key:
                # Drop the old model before loading: two may not fit in GPU memory.
                self._model = self._key = None
                model = self._load(spec)
                copies = torch_copies(sys.path)
                if len(copies) > 1:
                    model.notes.append(_second_torch_note(copies))
                self._model, self._key = model, key
            return self._model

    def clear(self) -> None:
        """Forget the model, so its memory can be freed."""
        with self._lock:
            self._model = self._key = None
