"""Model factories a Ray worker calls (importable there: tests/run is on its PYTHONPATH)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from run_helpers import CappedModel

from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.spec.models import ModelSpec


def capped_tiny() -> ResolvedModel:
    """The run tests' tiny model, one torch thread, as the in-process tests run it."""
    import torch

    torch.set_num_threads(1)
    resolved = resolve_model(ModelSpec(id="tiny"))
    resolved.model.prompt_cache.folder = Path(os.environ["RAY_TEST_CACHE"])
    return replace(resolved, model=CappedModel(resolved.model))


class _SlowModel(CappedModel):
    """Says which process generates (a file named by its pid in ``pids``), then waits, so
    that a test can kill a worker in the middle of an item."""

    def __init__(self, model, pids: Path):
        super().__init__(model)
        self.pids = pids

    def generate(self, *args):
        (self.pids / str(os.getpid())).touch()
        time.sleep(0.5)
        return super().generate(*args)


def slow_tiny(pids: Path) -> ResolvedModel:
    """:func:`capped_tiny`, half a second slower a clip, telling ``pids`` who generates."""
    resolved = capped_tiny()
    return replace(resolved, model=_SlowModel(resolved.model.model, pids))
