"""omni.replicator.core: Writer, WriterRegistry, AnnotatorRegistry, backends, orchestrator.

As in Replicator: WriterRegistry.get() makes an instance without calling __init__,
Writer.initialize(**kwargs) calls __init__, attach/detach go through the registry, and
unregister detaches first. ``orchestrator.step_async`` calls ``write`` of every attached
writer with the dict ``orchestrator.frame_source()`` returns (tests set it), as the
OgnWriter node does each captured frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any, ClassVar


class WriterRegistryError(Exception):
    pass


class Annotator:
    def __init__(self, name: str, init_params: dict[str, Any] | None = None):
        self.name = name
        self.init_params = init_params or {}
        self.render_products: list[str] = []

    def attach(self, render_products: list[str]) -> Annotator:
        self.render_products = list(render_products)
        return self

    def detach(self, render_products: list[str] | None = None) -> None:
        self.render_products = []

    def get_data(self, do_array_copy: bool = True) -> Any:
        return orchestrator.annotator_data.get(self.name)


class AnnotatorRegistry:
    @classmethod
    def get_annotator(
        cls,
        name: str,
        init_params: dict[str, Any] | None = None,
        device: str | None = None,
        do_array_copy: bool = True,
    ) -> Annotator:
        return Annotator(name, init_params)


class Writer(ABC):
    backend = None
    version = "0.0.0"
    annotators: ClassVar[list[Any]] = []

    @abstractmethod
    def write(self, data: dict) -> None:
        raise NotImplementedError

    def initialize(self, **kwargs: Any) -> None:
        self.__init__(**kwargs)

    def attach(
        self, render_products: Any, trigger: Any = "omni.replicator.core.OgnOnFrame"
    ) -> None:
        if isinstance(render_products, str):
            render_products = [render_products]
        WriterRegistry.attach(self, render_products, trigger=trigger)

    def detach(self) -> None:
        WriterRegistry._detach_by_writer(self)

    def on_final_frame(self) -> None:  # noqa: B027 -- concrete in Replicator (telemetry only)
        pass


class WriterRegistry:
    _writers: ClassVar[dict[str, type[Writer]]] = {}
    _active_writers: ClassVar[list[Writer]] = []

    @classmethod
    def register(cls, writer: type[Writer], category: str | None = None) -> None:
        if not issubclass(writer, Writer):
            raise WriterRegistryError(f"Writer must be of class `Writer`, got {writer}")
        if not isinstance(writer.annotators, Iterable):
            raise WriterRegistryError("Writer annotators must be specified as a list")
        cls._writers[writer.__name__] = writer

    @classmethod
    def unregister(cls, writer_name: str) -> None:
        if writer_name not in cls._writers:
            raise WriterRegistryError(f"No writer with name `{writer_name}` was found in registry.")
        cls.detach(writer_name)
        del cls._writers[writer_name]

    @classmethod
    def get(
        cls,
        writer_name: str,
        init_params: dict[str, Any] | None = None,
        render_products: list[str] | None = None,
        trigger: Any = "omni.replicator.core.OgnOnFrame",
    ) -> Writer:
        if writer_name not in cls._writers:
            raise WriterRegistryError(f"No writer with name `{writer_name}` was found in registry.")
        writer_cls = cls._writers[writer_name]
        writer = writer_cls.__new__(writer_cls)
        if init_params:
            writer.initialize(**init_params)
        if render_products:
            writer.attach(render_products, trigger=trigger)
        return writer

    @classmethod
    def get_writers(cls, category: str | None = None) -> dict[str, type[Writer]]:
        return dict(cls._writers)

    @classmethod
    def attach(cls, writer: Writer, render_products: list[str], **kwargs: Any) -> None:
        for annotator in writer.annotators:
            if isinstance(annotator, str):
                annotator = AnnotatorRegistry.get_annotator(annotator)
            annotator.attach(render_products)
        cls._active_writers.append(writer)

    @classmethod
    def detach(cls, writer_name: str) -> None:
        for writer in list(cls._active_writers):
            if type(writer).__name__ == writer_name:
                cls._detach_by_writer(writer)

    @classmethod
    def _detach_by_writer(cls, writer: Writer) -> None:
        if writer in cls._active_writers:
            cls._active_writers.remove(writer)


class _DiskBackend:
    def initialize(self, output_dir: str, **kwargs: Any) -> None:
        self.output_dir = output_dir

    def schedule(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        fn(**kwargs)


def _get_backend(name: str) -> _DiskBackend:
    if name != "DiskBackend":
        raise ValueError(f"unknown backend {name!r}")
    return _DiskBackend()


async def _step_async(
    rt_subframes: int = -1, pause_timeline: bool = True, delta_time: float | None = None
) -> None:
    _step()


def _step(
    rt_subframes: int = -1, pause_timeline: bool = True, delta_time: float | None = None
) -> None:
    if orchestrator.frame_source is None:
        return
    data = orchestrator.frame_source()
    for writer in list(WriterRegistry._active_writers):
        writer.write(data)


orchestrator = SimpleNamespace(
    step=_step,
    step_async=_step_async,
    wait_until_complete=lambda: None,
    set_capture_on_play=lambda value: None,
    frame_source=None,
    annotator_data={},
)
backends = SimpleNamespace(get=_get_backend)
annotators = SimpleNamespace(get=AnnotatorRegistry.get_annotator)
writers = SimpleNamespace(register_writer=WriterRegistry.register, get=WriterRegistry.get)
