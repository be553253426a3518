"""omni.kit.app: the app object; next_update_async yields one frame of the main loop."""

from __future__ import annotations

import asyncio


class _ExtensionManager:
    def get_extension_path(self, ext_id: str) -> str:
        return ""


class _App:
    def get_extension_manager(self) -> _ExtensionManager:
        return _ExtensionManager()

    async def next_update_async(self) -> None:
        await asyncio.sleep(0)


def get_app() -> _App:
    return _App()
