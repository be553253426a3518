"""omni.kit.menu.utils: entries of the app's top menus (Window, File, ...).

``menus`` maps a top menu's name to the items added to it, so tests can click them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

menus: dict[str, list[MenuItemDescription]] = {}


class MenuItemDescription:
    def __init__(
        self,
        name: str = "",
        onclick_fn: Callable[[], None] | None = None,
        ticked: bool = False,
        ticked_fn: Callable[[], bool] | None = None,
        **kwargs: Any,
    ):
        self.name = name
        self.onclick_fn = onclick_fn
        self.ticked = ticked
        self.ticked_fn = ticked_fn


def add_menu_items(items: list[MenuItemDescription], name: str) -> None:
    menus.setdefault(name, []).extend(items)


def remove_menu_items(items: list[MenuItemDescription], name: str) -> None:
    menus[name] = [item for item in menus.get(name, []) if item not in items]


def refresh_menu_items(name: str) -> None:
    """Kit re-reads ticked_fn when the menu next opens; the stand-in's items read it live."""
