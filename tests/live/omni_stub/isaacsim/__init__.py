"""isaacsim: SimulationApp, which a standalone script creates before any omni import.

The stand-in starts nothing: a test registers the writer itself, as enabling the
extension (``--enable cosmos.transfer.bridge`` in ``extra_args``) does in Isaac Sim.
"""

from __future__ import annotations

from typing import Any


class SimulationApp:
    def __init__(self, launch_config: dict[str, Any] | None = None, experience: str = ""):
        self.config = dict(launch_config or {})
        self.closed = False

    def update(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
