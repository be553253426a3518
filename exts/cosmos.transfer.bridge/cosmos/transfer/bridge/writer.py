"""CosmosTransferWriter: a Replicator writer over bridge_core.live.LiveAugmenter.

Replicator calls write(data) once per captured frame with the legacy data layout; the
LiveAugmenter writes the frame in BasicWriter layout and generates each complete clip on
its worker thread, as ``cosmos-bridge run`` would. A bad configuration or a failed write
is logged and turns the writer off; it never raises into the capture.

Replicator calls write() and on_final_frame() on Kit's main loop, so both return at once:
on_final_frame() only starts the last clip on the worker (finish_async); flush() and
detach() are the calls that wait, for scripts and worker threads.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

import carb
from omni.replicator.core import AnnotatorRegistry, Writer

from bridge_core.errors import BridgeError
from bridge_core.live.augmenter import LiveAugmenter, LiveResult, LiveStatus
from bridge_core.live.models import ModelCache
from bridge_core.live.spec import live_spec
from bridge_core.run.models import resolve_model
from bridge_core.spec.models import JobSpec

__version__ = "0.1.1"
WRITER_NAME = "CosmosTransferWriter"


# Annotator -> init_params. Segmentation is colorized, as BasicWriter writes it by default;
# instance ids come from the fast variant BasicWriter uses (written under the short name).
ANNOTATORS: dict[str, dict[str, Any] | None] = {
    "rgb": None,
    "distance_to_image_plane": None,
    "semantic_segmentation": {"colorize": True},
    "instance_id_segmentation_fast": {"colorize": True},
    "normals": None,
    "camera_params": None,
}


def make_annotators() -> list[Any]:
    """The annotators the writer reads, in ANNOTATORS order (the panel's preview uses them)."""
    return [
        AnnotatorRegistry.get_annotator(name, init_params=params)
        for name, params in ANNOTATORS.items()
    ]


class CosmosTransferWriter(Writer):
    """Writes BasicWriter ground truth and generates the job spec's variations while capturing.

    output_dir: folder for the ground truth; variations go to
                ``output_dir/cosmos_transfer/<output.run_name>/<variation>/``
    spec:       a JobSpec, its dict, or a spec file; the other parameters override it
    controls, variations, model, output, cameras, clip_length: the job spec's fields
    models:     a ModelCache to share a loaded model (the panel's); None loads per writer
    on_status:  called with a LiveStatus after each change, from any thread
    """

    # Every writer with a capture, for close_all() at extension shutdown.
    _running: ClassVar[weakref.WeakSet[CosmosTransferWriter]] = weakref.WeakSet()

    def __init__(
        self,
        output_dir: str | Path | None = None,
        spec: JobSpec | Mapping[str, Any] | str | Path | None = None,
        controls: Mapping[str, Any] | None = None,
        variations: list[Mapping[str, Any]] | None = None,
        model: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | None = None,
        cameras: list[str] | None = None,
        clip_length: int | None = None,
        models: ModelCache | None = None,
        on_status: Callable[[LiveStatus], None] | None = None,
        seed: int = 0,
    ):
        # Like Isaac Sim's own writers, no Writer.__init__: the base class keeps its state
        # in class attributes.
        self.version = __version__
        self.data_structure = "legacy"
        self.annotators = make_annotators()
        self.error: str | None = None
        self._on_status = on_status
        self._augmenter: LiveAugmenter | None = None
        self._reported_error = False
        self._reported_late = False
        try:
            job = live_spec(
                output_dir,
                spec,
                controls=controls,
                variations=variations,
                model=model,
                output=output,
                cameras=cameras,
                clip_length=clip_length,
            )
            self._augmenter = LiveAugmenter(
                job,
                load_model=(models or ModelCache(resolve_model)).get,
                on_status=self._status,
                seed=seed,
            )
        except BridgeError as exc:
            self._disable(str(exc))
            return
        self._running.add(self)

    @property
    def status(self) -> LiveStatus | None:
        """Where the capture stands; None when the writer is off."""
        return None if self._augmenter is None else self._augmenter.status

    def write(self, data: dict) -> None:
        if self._augmenter is None:
            return
        if self._augmenter.finishing:
            # Replicator stopped (on_final_frame) and was stepped again: this capture is
            # over, its last clip generating; the frames after it are not part of it.
            if not self._reported_late:
                self._reported_late = True
                carb.log_warn(
                    f"{WRITER_NAME}: Replicator stopped this capture; later frames are not written"
                )
            return
        try:
            self._augmenter.write(data)
        except (BridgeError, OSError) as exc:
            self._disable(f"stopped at frame {self._augmenter.status.frames_captured}: {exc}")

    def write_metadata(self) -> None:
        """BasicWriter's metadata.txt is written by the LiveAugmenter (no backend here)."""

    def finish_async(self) -> Future[LiveResult] | None:
        """Start generating the last partial clip on the worker and return at once; the
        future holds what flush() returns (the same future on every call). None when off."""
        if self._augmenter is None:
            return None
        first = not self._augmenter.finishing
        future = self._augmenter.finish_async()
        if first:
            future.add_done_callback(_log_result)
        return future

    def flush(self) -> LiveResult | None:
        """Generate the last partial clip and wait for every clip (blocks; idempotent)."""
        future = self.finish_async()
        return None if future is None else future.result()

    def cancel(self) -> None:
        """Stop generating after the current frame; the ground truth stays complete."""
        if self._augmenter is not None:
            self._augmenter.cancel()

    def on_final_frame(self) -> None:
        # Called on Kit's main loop when Replicator stops (orchestrator.py): waiting here
        # would freeze the app for the whole generation. Replicator's base implementation
        # only sends telemetry.
        self.finish_async()

    def detach(self, wait: bool = True) -> None:
        """Stop receiving frames; ``wait``: also flush() (the panel waits off the main loop)."""
        super().detach()
        if wait:
            self.flush()

    @classmethod
    def close_all(cls) -> None:
        """Cancel and detach every writer still capturing (the extension's on_shutdown).

        Generation stops after the clip being generated, which this waits for; the
        ground truth is complete and ``cosmos-bridge run`` with the same spec resumes.
        """
        for writer in list(cls._running):
            if not writer.status.finished:
                writer.cancel()
            writer.detach()

    def _status(self, status: LiveStatus) -> None:
        if status.error is not None and not self._reported_error:
            self._reported_error = True
            self.error = status.error
            carb.log_error(f"{WRITER_NAME}: {status.error}")
        if self._on_status is not None:
            self._on_status(status)

    def _disable(self, message: str) -> None:
        if self._augmenter is not None:
            self._augmenter.cancel()
            self._augmenter.finish_async()  # lets its threads end
        self._running.discard(self)
        self.error = message
        self._augmenter = None
        carb.log_error(f"{WRITER_NAME} is off, the capture goes on without it: {message}")


def _log_result(future: Future[LiveResult]) -> None:
    if future.exception() is None:
        result = future.result()
        carb.log_info(
            f"{WRITER_NAME}: {result.frames_captured} frame(s) captured to {result.dataset_dir}, "
            f"{result.frames_generated} generated into {result.run_dir}"
        )
