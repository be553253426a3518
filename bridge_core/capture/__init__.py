"""Headless capture: Replicator BasicWriter datasets straight from USD scenes (pxr + warp).

``capture_scene`` and ``read_scene`` need the ``capture`` extra (usd-core, warp-lang); they are
imported on first use, so importing this package needs neither. The files are written by
``bridge_core.datasets.basicwriter_out``, beside the BasicWriter reader.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CaptureResult", "capture_scene", "read_scene"]


def __getattr__(name: str) -> Any:
    if name in ("CaptureResult", "capture_scene"):
        from bridge_core.capture import capture

        return getattr(capture, name)
    if name == "read_scene":
        from bridge_core.capture.scene import read_scene

        return read_scene
    raise AttributeError(name)
