"""Lifecycle only: register the writer, open the panel and its Window menu entry where there
is a UI, undo all of it."""

from __future__ import annotations

from typing import Any

import carb
import carb.settings
import omni.ext
import omni.replicator.core as rep

SETTINGS = "/exts/cosmos.transfer.bridge"
MENU = "Window"
NOT_INSTALLED = (
    "cosmos.transfer.bridge is off: the cosmos-transfer-bridge package is not installed in "
    "this app's Python ({exc}). Install it as the extension's docs/README.md says (Isaac Sim "
    "from pip: pip install -e '/path/to/cosmos-transfer-bridge[model]' in its venv; "
    "standalone or container: ./python.sh -m pip install ... with torch's pip_prebundle on "
    "PYTHONPATH), then restart the app."
)


class CosmosTransferBridgeExtension(omni.ext.IExt):
    """Created by Kit when the extension is enabled."""

    def on_startup(self, ext_id: str) -> None:
        self._panel: Any = None
        self._menu: list[Any] = []
        self._writer: Any = None
        try:
            # The package lives in the app's Python, installed beforehand: Kit's pipapi
            # would install a second torch (docs/README.md, Install).
            from .writer import CosmosTransferWriter
        except ImportError as exc:
            carb.log_error(NOT_INSTALLED.format(exc=exc))
            return
        self._writer = CosmosTransferWriter
        rep.WriterRegistry.register(CosmosTransferWriter)
        settings = carb.settings.get_settings()
        if not settings.get(f"{SETTINGS}/show_panel"):
            return
        try:
            # omni.ui comes with omni.kit.uiapp, an optional dependency: headless apps lack it.
            from .panel import TITLE, CosmosTransferPanel
        except ImportError as exc:
            carb.log_info(f"cosmos.transfer.bridge: no UI ({exc}); the writer is registered")
            return
        self._panel = CosmosTransferPanel(output_dir=settings.get(f"{SETTINGS}/output_dir"))
        self._add_menu(TITLE)

    def _add_menu(self, title: str) -> None:
        """Window > Cosmos Transfer shows or hides the panel (closing it only hides it)."""
        try:
            import omni.kit.menu.utils as menu_utils
        except ImportError as exc:
            carb.log_info(f"cosmos.transfer.bridge: no menu ({exc})")
            return
        panel = self._panel
        self._menu = [
            menu_utils.MenuItemDescription(
                name=title,
                ticked=True,
                ticked_fn=lambda: panel.visible,
                onclick_fn=lambda: panel.set_visible(not panel.visible),
            )
        ]
        menu_utils.add_menu_items(self._menu, MENU)
        panel.window.set_visibility_changed_fn(lambda _visible: menu_utils.refresh_menu_items(MENU))

    def on_shutdown(self) -> None:
        if self._menu:
            import omni.kit.menu.utils as menu_utils

            menu_utils.remove_menu_items(self._menu, MENU)
            self._menu = []
        if self._panel is not None:
            self._panel.destroy()
            self._panel = None
        if self._writer is not None:
            # Through each writer's own detach, so its threads are cancelled and end;
            # unregistering alone detaches by id and leaves them running (writers.py).
            self._writer.close_all()
            rep.WriterRegistry.unregister(self._writer.__name__)
            self._writer = None
