"""Lifecycle only: register the writer, open the panel where there is a UI, undo both."""

from __future__ import annotations

import carb
import carb.settings
import omni.ext
import omni.replicator.core as rep

from .writer import WRITER_NAME, CosmosTransferWriter

SETTINGS = "/exts/cosmos.transfer.bridge"


class CosmosTransferBridgeExtension(omni.ext.IExt):
    """Created by Kit when the extension is enabled."""

    def on_startup(self, ext_id: str) -> None:
        self._panel = None
        rep.WriterRegistry.register(CosmosTransferWriter)
        settings = carb.settings.get_settings()
        if not settings.get(f"{SETTINGS}/show_panel"):
            return
        try:
            # omni.ui comes with omni.kit.uiapp, an optional dependency: headless apps lack it.
            from .panel import CosmosTransferPanel
        except ImportError as exc:
            carb.log_info(f"cosmos.transfer.bridge: no UI ({exc}); the writer is registered")
            return
        self._panel = CosmosTransferPanel(output_dir=settings.get(f"{SETTINGS}/output_dir"))

    def on_shutdown(self) -> None:
        if self._panel is not None:
            self._panel.destroy()
            self._panel = None
        rep.WriterRegistry.unregister(WRITER_NAME)
