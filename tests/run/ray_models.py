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
    """Waits before each clip, so that a test can kill a worker while it holds items."""

    def generate(self, *args):
        time.sleep(float(os.environ.get("RAY_TEST_SLOW_S", "0.5")))
        return super().generate(*args)


def slow_tiny() -> ResolvedModel:
    resolved = capped_tiny()
    return replace(resolved, model=_SlowModel(resolved.model.model))
