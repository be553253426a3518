"""omni.replicator.core: Writer, WriterRegistry, AnnotatorRegistry, backends, orchestrator, create.

What is copied from Replicator's sources is marked with the file it was read in
(omni.replicator.core's scripts: ``writers.py``, ``annotators.py``, ``orchestrator.py``).
``orchestrator.step_async`` calls ``write`` of every attached writer with the dict
``orchestrator.frame_source()`` returns (tests set it), as the OgnWriter node does each
captured frame; ``orchestrator.annotator_data`` is what attached annotators return.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from enum import Enum
from types import SimpleNamespace
from typing import Any, ClassVar

import omni.timeline

# The annotators this stand-in knows; Replicator registers many more (annotators.py
# DEFAULT_ANNOTATORS), and raises for a name it does not know, as get_annotator does here.
KNOWN_ANNOTATORS = frozenset(
    {
        "rgb",
        "distance_to_image_plane",
        "semantic_segmentation",
        "instance_id_segmentation_fast",
        "normals",
        "camera_params",
    }
)


class WriterRegistryError(Exception):
    pass


class InvalidWriterError(WriterRegistryError):
    pass


class AnnotatorRegistryError(Exception):
    pass


class AnnotatorError(Exception):
    pass


class Annotator:
    def __init__(self, name: str, init_params: dict[str, Any] | None = None):
        # annotators.py Annotator.__init__: an unknown template raises at construction.
        if name not in KNOWN_ANNOTATORS:
            raise AnnotatorRegistryError(f"The annotator `{name}` is missing")
        self.name = name
        self.init_params = init_params or {}
        self.render_products: list[str] | None = None

    @property
    def is_attached(self) -> bool:
        return self.render_products is not None

    def attach(self, render_products: str | list[str]) -> Annotator:
        if isinstance(render_products, str):
            render_products = [render_products]
        # annotators.py Annotator.attach: one render product per annotator instance.
        if len(render_products) > 1:
            raise NotImplementedError(
                "Attaching a list of render products is currently not implemented"
            )
        self.render_products = list(render_products)
        return self

    def detach(self, render_products: list[str] | None = None) -> None:
        # annotators.py Annotator.detach: detaching what is not attached raises.
        if not self.render_products:
            raise AnnotatorError(
                "Unable to detach annotator, annotator is not attached to any render products."
            )
        self.render_products = None

    def get_data(self, do_array_copy: bool = False) -> Any:
        # annotators.py Annotator.get_data: raises before attach() and after detach().
        if not self.is_attached:
            raise AnnotatorError(
                "Unable to get data, annotator is not attached to any render products."
            )
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
    annotators: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Writer:
        # writers.py Writer.__new__: per-instance defaults; get() never calls __init__.
        instance = super().__new__(cls)
        instance.annotators = []
        return instance

    @abstractmethod
    def write(self, data: dict) -> None:
        raise NotImplementedError

    def initialize(self, **kwargs: Any) -> None:
        self.__init__(**kwargs)

    def attach(
        self, render_products: Any, trigger: Any = "omni.replicator.core.OgnOnFrame"
    ) -> None:
        if isinstance(render_products, (str, _RenderProduct)):
            render_products = [render_products]
        WriterRegistry.attach(self, render_products, trigger=trigger)

    def detach(self) -> None:
        WriterRegistry._detach_by_writer(self)

    def reset(self) -> None:  # noqa: B027 -- concrete in Replicator (clears cached data)
        pass

    def on_final_frame(self) -> None:  # noqa: B027 -- concrete in Replicator (telemetry only)
        pass


class WriterRegistry:
    _writers: ClassVar[dict[str, type[Writer]]] = {}
    _active_writers: ClassVar[list[Writer]] = []

    @classmethod
    def register(cls, writer: type[Writer], category: str | None = None) -> None:
        # writers.py register: checks the class only; annotators are checked at attach.
        if not issubclass(writer, Writer):
            raise InvalidWriterError(f"Writer must be of class `Writer`, got {type(writer)}")
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
        # writers.py attach/_attach: the annotators are checked here, and each render
        # product gets its own attached copy of every annotator.
        # Render products may be given as the objects rep.create.render_product returns.
        render_products = [getattr(rp, "path", rp) for rp in render_products]
        if not isinstance(writer.annotators, Iterable):
            raise InvalidWriterError("Writer annotators must be specified as a list of annotators.")
        attached = []
        for spec in writer.annotators:
            if isinstance(spec, str):
                spec = AnnotatorRegistry.get_annotator(spec)
            elif not isinstance(spec, Annotator):
                raise InvalidWriterError(
                    f"The annotator specified by writer is not registered: {spec}"
                )
            attached += [
                Annotator(spec.name, spec.init_params).attach(rp) for rp in render_products
            ]
        writer._attached_annotators = attached
        cls._active_writers.append(writer)

    @classmethod
    def detach(cls, writer_name: str) -> None:
        for writer in list(cls._active_writers):
            if type(writer).__name__ == writer_name:
                cls._detach_by_writer(writer)

    @classmethod
    def _detach_by_writer(cls, writer: Writer) -> None:
        # writers.py _detach_by_writer_id: reset() the writer, detach its annotators; the
        # writer's own detach() is not called (unregister and detach-by-name come here).
        if writer not in cls._active_writers:
            return
        cls._active_writers.remove(writer)
        writer.reset()
        for annotator in writer._attached_annotators:
            annotator.detach()
        writer._attached_annotators = []

    @classmethod
    def _on_final_frame(cls) -> None:
        for writer in list(cls._active_writers):
            writer.on_final_frame()


class Status(Enum):
    STOPPED = 0
    STEPPED = 8


class _RenderProduct:
    def __init__(self, camera: Any, resolution: tuple[int, int], name: str | None = None):
        self.path = f"/Render/{name or 'RenderProduct'}"
        self.camera, self.resolution = camera, resolution
        self.destroyed = False

    def destroy(self) -> None:
        self.destroyed = True


class _DiskBackend:
    def initialize(self, output_dir: str, **kwargs: Any) -> None:
        self.output_dir = output_dir

    def schedule(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        fn(**kwargs)


def _get_backend(name: str) -> _DiskBackend:
    if name != "DiskBackend":
        raise ValueError(f"unknown backend {name!r}")
    return _DiskBackend()


def _step(
    rt_subframes: int = -1, pause_timeline: bool = True, delta_time: float | None = None
) -> None:
    orchestrator.status = Status.STEPPED
    # A step renders one frame: time moves only while the timeline plays, and the step
    # does not start it (orchestrator.py; Isaac Sim's cosmos_writer_simple.py plays first).
    timeline = omni.timeline.get_timeline_interface()
    timeline._tick()
    if pause_timeline:
        timeline.pause()
    if orchestrator.frame_source is None:
        return
    data = orchestrator.frame_source()
    for writer in list(WriterRegistry._active_writers):
        writer.write(data)


async def _step_async(
    rt_subframes: int = -1, pause_timeline: bool = True, delta_time: float | None = None
) -> None:
    _step(rt_subframes, pause_timeline, delta_time)


def _wait_until_complete() -> None:
    # orchestrator.py: waiting stops a stepped orchestrator, and the status becoming
    # STOPPED calls every attached writer's on_final_frame, on the caller's (main) thread.
    if orchestrator.status != Status.STOPPED:
        orchestrator.status = Status.STOPPED
        WriterRegistry._on_final_frame()


async def _wait_until_complete_async() -> None:
    _wait_until_complete()


def _set_capture_on_play(value: bool) -> None:
    orchestrator.capture_on_play = bool(value)


orchestrator = SimpleNamespace(
    step=_step,
    step_async=_step_async,
    wait_until_complete=_wait_until_complete,
    wait_until_complete_async=_wait_until_complete_async,
    set_capture_on_play=_set_capture_on_play,
    status=Status.STOPPED,
    # Replicator's default (orchestrator.py reads /persistent/omni/replicator/captureOnPlay).
    capture_on_play=True,
    frame_source=None,
    annotator_data={},
)
backends = SimpleNamespace(get=_get_backend)
annotators = SimpleNamespace(get=AnnotatorRegistry.get_annotator)
writers = SimpleNamespace(register_writer=WriterRegistry.register, get=WriterRegistry.get)
create = SimpleNamespace(render_product=_RenderProduct)
