"""Live-capture fixtures: the sample's frames as write(data) dicts, a recording model, and
the omni stand-in (``kit``) that the extension imports against."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from live_data import EXT_DIR, RENDER_PRODUCTS, RecordingModel, replicator_frames

from bridge_core.run.models import ResolvedModel

STUB_DIR = Path(__file__).resolve().parent / "omni_stub"
_KIT_PACKAGES = ("omni", "carb", "cosmos")


@pytest.fixture(scope="session")
def multi_frames() -> list[dict[str, Any]]:
    return replicator_frames(RENDER_PRODUCTS)


@pytest.fixture(scope="session")
def flat_frames() -> list[dict[str, Any]]:
    return replicator_frames(RENDER_PRODUCTS[:1])


@pytest.fixture
def recording() -> tuple[RecordingModel, ResolvedModel]:
    model = RecordingModel()
    return model, ResolvedModel(model, "recording")


@pytest.fixture
def kit(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The omni stand-in on sys.path, fresh for each test, and the extension importable.

    Every omni, carb and cosmos module is dropped afterwards, so each test starts from a
    clean registry and no other test sees omni.
    """
    monkeypatch.syspath_prepend(str(EXT_DIR))
    monkeypatch.syspath_prepend(str(STUB_DIR))
    before = set(sys.modules)
    import carb
    import carb.settings
    import omni.replicator.core as rep
    import omni.ui as ui
    import omni.usd

    carb.settings.get_settings().set("/exts/cosmos.transfer.bridge/show_panel", True)
    yield SimpleNamespace(carb=carb, rep=rep, ui=ui, usd=omni.usd)
    for name in set(sys.modules) - before:
        if name.split(".")[0] in _KIT_PACKAGES:
            del sys.modules[name]
