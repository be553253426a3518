"""One loaded model kept between panel runs and previews: loading takes minutes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.spec.models import ModelSpec

# The ModelSpec fields that decide what is loaded; sampling fields (steps, guidance) do not.
_LOAD_FIELDS = {"id", "revision", "device", "dtype", "memory", "frames_per_chunk"}


class ModelCache:
    """The model of the last ModelSpec asked for; another spec replaces it (one in memory)."""

    def __init__(self, load: Callable[[ModelSpec], ResolvedModel] = resolve_model):
        self._load = load
        self._lock = threading.Lock()
        self._key: dict[str, object] | None = None
        self._model: ResolvedModel | None = None

    def get(self, spec: ModelSpec) -> ResolvedModel:
        """The model for ``spec``, loaded on first use (callable from any thread)."""
        key = spec.model_dump(include=_LOAD_FIELDS)
        with self._lock:
            if self._model is None or key != self._key:
                # Drop the old model before loading: two may not fit in GPU memory.
                self._model = self._key = None
                self._model = self._load(spec)
                self._key = key
            return self._model

    def clear(self) -> None:
        """Forget the model, so its memory can be freed."""
        with self._lock:
            self._model = self._key = None
