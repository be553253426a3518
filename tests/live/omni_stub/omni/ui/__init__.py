"""omni.ui: the widgets the panel builds, with value models and callbacks as documented.

Widgets created inside a container's ``with`` block become its children; value widgets
have ``.model`` (get_value_as_*, as_*, set_value, add_value_changed_fn); set_value calls
the changed callbacks when the value changes, as the real models do. Kit draws every
visible window each frame; tests call :func:`draw` where Kit would draw.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

_open: list[Any] = []  # containers whose `with` block is running
_windows: list[Window] = []  # windows not destroyed, in creation order


class Alignment(Enum):
    LEFT_CENTER = 0
    CENTER = 1
    RIGHT_CENTER = 2


class DockPreference(Enum):
    LEFT_BOTTOM = 0


class AbstractValueModel:
    def __init__(self, value: Any = None, cast: Callable[[Any], Any] = lambda v: v):
        self._cast = cast
        self._value = cast(value) if value is not None else value
        self._changed: list[Callable[[AbstractValueModel], None]] = []

    def get_value_as_string(self) -> str:
        return "" if self._value is None else str(self._value)

    def get_value_as_float(self) -> float:
        return float(self._value or 0.0)

    def get_value_as_int(self) -> int:
        return int(self._value or 0)

    def get_value_as_bool(self) -> bool:
        return bool(self._value)

    as_string = property(get_value_as_string)
    as_float = property(get_value_as_float)
    as_int = property(get_value_as_int)
    as_bool = property(get_value_as_bool)

    def set_value(self, value: Any) -> None:
        value = self._cast(value)
        if value != self._value:
            self._value = value
            for fn in list(self._changed):
                fn(self)

    def add_value_changed_fn(self, fn: Callable[[AbstractValueModel], None]) -> None:
        self._changed.append(fn)


class Widget:
    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
        self.visible = kwargs.get("visible", True)
        self.enabled = kwargs.get("enabled", True)
        self.tooltip = kwargs.get("tooltip", "")
        if _open:
            _open[-1].children.append(self)


class Container(Widget):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.children: list[Widget] = []

    def __enter__(self) -> Container:
        _open.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _open.pop()

    def clear(self) -> None:
        self.children = []


class VStack(Container):
    pass


class HStack(Container):
    pass


class ZStack(Container):
    pass


class ScrollingFrame(Container):
    pass


class CollapsableFrame(Container):
    def __init__(self, title: str = "", collapsed: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.title = title
        self.collapsed = collapsed


class Frame(Container):
    # The omni.ui docs (omni.ui.Frame): build_fn is called once the frame is visible, and
    # rebuild() makes the next drawing cycle call it again; neither builds right away.
    def __init__(self, build_fn: Callable[[], None] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._build_fn = build_fn
        self._dirty = build_fn is not None

    def set_build_fn(self, fn: Callable[[], None]) -> None:
        self._build_fn = fn
        self._dirty = True

    def rebuild(self) -> None:
        self._dirty = self._build_fn is not None

    def _draw(self) -> None:
        if self._dirty and self._build_fn is not None:
            self._dirty = False
            self.clear()
            with self:
                self._build_fn()
        for child in list(self.children):
            _draw_tree(child)


def _draw_tree(widget: Widget) -> None:
    if isinstance(widget, Frame):
        widget._draw()
    elif isinstance(widget, Container):
        for child in list(widget.children):
            _draw_tree(child)


def draw() -> None:
    """One drawing cycle (stand-in only): build the frames of every visible window."""
    for window in list(_windows):
        if window.visible:
            window.frame._draw()


class Window:
    def __init__(self, title: str, width: int = 400, height: int = 400, **kwargs: Any):
        self.title = title
        self.kwargs = kwargs
        self._visible = kwargs.get("visible", True)
        self.frame = Frame()
        self.destroyed = False
        self._visibility_fns: list[Callable[[bool], None]] = []
        _windows.append(self)

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        # Closing the window (its X) hides it, and the visibility callback hears of it.
        if value != self._visible:
            self._visible = value
            for fn in list(self._visibility_fns):
                fn(value)

    def set_visibility_changed_fn(self, fn: Callable[[bool], None]) -> None:
        self._visibility_fns.append(fn)

    def destroy(self) -> None:
        self.destroyed = True
        self.frame.clear()
        _windows.remove(self)


class Label(Widget):
    def __init__(self, text: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.text = text


class Button(Widget):
    def __init__(self, text: str = "", clicked_fn: Callable[[], None] | None = None, **kw: Any):
        super().__init__(**kw)
        self.text = text
        self._clicked_fn = clicked_fn

    def set_clicked_fn(self, fn: Callable[[], None]) -> None:
        self._clicked_fn = fn

    def call_clicked_fn(self) -> None:
        if self._clicked_fn is not None:
            self._clicked_fn()


class _ValueWidget(Widget):
    _cast: Callable[[Any], Any] = staticmethod(lambda v: v)
    _default: Any = None

    def __init__(self, model: AbstractValueModel | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = model or AbstractValueModel(self._default, self._cast)


class StringField(_ValueWidget):
    _cast = staticmethod(str)
    _default = ""


class FloatField(_ValueWidget):
    _cast = staticmethod(float)
    _default = 0.0


class IntField(_ValueWidget):
    _cast = staticmethod(int)
    _default = 0


class CheckBox(_ValueWidget):
    _cast = staticmethod(bool)
    _default = False


class FloatSlider(FloatField):
    def __init__(
        self,
        model: AbstractValueModel | None = None,
        min: float = 0.0,
        max: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(model, **kwargs)
        self.min, self.max = min, max


class ProgressBar(FloatField):
    pass


class _ComboItem:
    def __init__(self, text: str):
        self.model = AbstractValueModel(text, str)


class _ComboModel:
    def __init__(self, index: int, items: tuple[str, ...]):
        self._index = AbstractValueModel(index, int)
        self._items = [_ComboItem(text) for text in items]
        self._changed: list[Callable[[Any, Any], None]] = []
        self._index.add_value_changed_fn(lambda _m: [fn(self, None) for fn in self._changed])

    def get_item_value_model(self, item: Any = None, column_id: int = 0) -> AbstractValueModel:
        return self._index if item is None else item.model

    def get_item_children(self, item: Any = None) -> list[_ComboItem]:
        return list(self._items)

    def add_item_changed_fn(self, fn: Callable[[Any, Any], None]) -> None:
        self._changed.append(fn)


class ComboBox(Widget):
    def __init__(self, default_index: int = 0, *items: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = _ComboModel(default_index, items)


class ByteImageProvider:
    # omni.ui docs (ByteImageProvider): set_bytes_data takes a Python sequence of bytes,
    # set_data_array an array; both with the picture's [width, height].
    def __init__(self) -> None:
        self.data: Any = None
        self.size: list[int] = [0, 0]

    def set_bytes_data(self, data: list[int], size: list[int]) -> None:
        self.data, self.size = list(data), list(size)

    def set_data_array(self, data: np.ndarray, size: list[int]) -> None:
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
            raise TypeError(f"set_data_array takes a uint8 numpy array, got {type(data)}")
        self.data, self.size = data, list(size)


class ImageWithProvider(Widget):
    def __init__(self, provider: ByteImageProvider, **kwargs: Any):
        super().__init__(**kwargs)
        self.provider = provider
