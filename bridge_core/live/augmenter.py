"""Capture-time augmentation: Replicator ``data`` dicts in, the run loop's outputs out.

:class:`LiveAugmenter` is what the Kit writer wraps, free of omni so it runs and is tested
anywhere. Each ``write(data)`` becomes one BasicWriter frame in the output folder (the
job spec's ``input.dataset``); each time ``clip_length`` frames are on disk, those frames
go to :func:`bridge_core.run.loop.run_job`, the function ``cosmos-bridge run`` calls, so
the generated frames, labels, manifest and report are the ones a later
``cosmos-bridge run`` over the same folder would write. :meth:`LiveAugmenter.finish`
runs the last partial clip, then one more ``run_job`` over the whole folder (every
frame already done, so it only rewrites run.json to cover the whole capture);
:meth:`LiveAugmenter.finish_async` starts that and returns at once, for callers on Kit's
main loop. A finished capture's threads end by themselves.

Threads: files are written by one I/O thread, so ``write`` returns after parsing (at most
``MAX_PENDING_WRITES`` frames queue in memory); the model loads and generates on one
worker thread, never on the thread that calls ``write``. Errors in the worker (a model
that cannot load, a spec the data cannot satisfy) are logged, kept in :attr:`status`, and
stop generation, never the capture: ground truth keeps being written.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge_core.datasets.basicwriter import is_basicwriter_folder, is_render_product_folder
from bridge_core.datasets.basicwriter_out import BasicWriterLayout, write_metadata
from bridge_core.errors import BridgeError, InputError
from bridge_core.live.data import parse_data, write_frame
from bridge_core.run.layout import RUNS_FOLDER
from bridge_core.run.loop import run_job
from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.spec.models import JobSpec, ModelSpec

log = logging.getLogger(__name__)

# Frames parsed but not yet on disk before write() waits: bounds the arrays held in memory.
MAX_PENDING_WRITES = 4


@dataclass
class LiveStatus:
    """Where a live capture stands; a copy goes to ``on_status`` after every change.

    frames_captured:  frames handed to write()
    frames_generated: output frames written by the run loop (frames x variations)
    error:            the first error that stopped generation, as a user should read it
    notes:            what the model asks a user to know (e.g. a random model)
    """

    frames_captured: int = 0
    frames_generated: int = 0
    finished: bool = False
    cancelled: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LiveResult:
    """What a finished live capture wrote: ``run_dir`` holds the generated variations."""

    dataset_dir: Path
    run_dir: Path
    frames_captured: int
    frames_generated: int
    error: str | None
    cancelled: bool


class _Cancelled(Exception):
    """Raised inside run_job (from its progress callback) to stop at a frame boundary."""


class _Progress:
    """The run loop's RunProgress: counts generated frames and carries cancellation in."""

    def __init__(self, augmenter: LiveAugmenter):
        self._augmenter = augmenter

    def start(self, total: int, done: int) -> None:
        """Nothing to show: live totals grow as frames arrive."""

    def advance(self, frames: int) -> None:
        self._augmenter._update(frames_generated=self._augmenter.status.frames_generated + frames)
        if self._augmenter._cancel.is_set():
            raise _Cancelled


class LiveAugmenter:
    """Writes Replicator frames as a BasicWriter dataset and generates clip by clip.

    spec:       the job; ``spec.input.dataset`` is the output folder (see
                :func:`bridge_core.live.spec.live_spec`), ``spec.input.frames`` must be None
    model:      a resolved model to use; None loads ``spec.model`` with ``load_model``
    on_status:  called with a copy of :attr:`status` after each change, from any thread
    seed:       replicator_global_seed written to metadata.txt

    ``write`` must be called from one thread at a time (Replicator calls it in order).
    """

    def __init__(
        self,
        spec: JobSpec,
        model: ResolvedModel | None = None,
        *,
        load_model: Callable[[ModelSpec], ResolvedModel] = resolve_model,
        on_status: Callable[[LiveStatus], None] | None = None,
        seed: int = 0,
    ):
        if spec.input.frames is not None:
            raise InputError(
                "a live capture generates every captured frame; leave input.frames unset",
                field="input.frames",
            )
        self.spec = spec
        self.root = Path(spec.input.dataset)
        self.run_dir = self.root / RUNS_FOLDER / spec.output.run_name
        _prepare_folder(self.root, seed)
        self.status = LiveStatus()
        self._on_status = on_status
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._progress = _Progress(self)
        self._load_model = load_model
        # Caller side: the next frame number, the layout fixed by the first frame, and
        # the writes still in flight.
        self._frame = 0
        self._layout: BasicWriterLayout | None = None
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._finish_future: Future[LiveResult] | None = None
        # Worker side (only the generation thread touches these).
        self._model = model
        self._clip_length: int | None = None
        self._written = 0  # frames whose files are all on disk
        self._next_start = 0  # first frame not yet handed to the run loop
        self._failed = False
        self._io = ThreadPoolExecutor(1, thread_name_prefix="cosmos-transfer-io")
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="cosmos-transfer-gen")
        # Load now, so a model that cannot load is reported before the first clip is due.
        self._worker.submit(self._guarded, self._ensure_model)

    # ---------------------------------------------------------------- caller thread

    def write(self, data: Mapping[str, Any]) -> int:
        """Take one Replicator ``data`` dict (legacy layout); returns its frame number.

        Raises InputError for a dict it cannot write (missing annotators, a layout that
        changed mid-capture) and re-raises a failed file write of an earlier frame.
        """
        if self.finishing:
            raise InputError("this capture is finished; start a new one to write more frames")
        frame_data = parse_data(data)
        layout = BasicWriterLayout(self.root, frame_data.flat)
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            raise InputError(
                "the number of render products changed during the capture", field="data"
            )
        while len(self._pending) >= MAX_PENDING_WRITES or (
            self._pending and self._pending[0].done()
        ):
            done = self._pending.popleft()
            if done.exception() is not None:
                raise InputError(f"writing the ground truth failed: {done.exception()}", self.root)
        frame = self._frame
        try:
            written = self._io.submit(write_frame, layout, frame, frame_data)
            self._worker.submit(self._guarded, self._frame_written, frame, written)
        except RuntimeError as exc:  # finish_async() ran on another thread meanwhile
            raise InputError(
                "this capture is finished; start a new one to write more frames"
            ) from exc
        self._frame += 1
        self._pending.append(written)
        self._update(frames_captured=self._frame)
        return frame

    @property
    def finishing(self) -> bool:
        """True once finish() or finish_async() was called: no more frames are taken."""
        return self._finish_future is not None

    def finish_async(self) -> Future[LiveResult]:
        """Start generating the last partial clip on the worker; returns at once.

        The future's result is what finish() returns; safe to call again (same future).
        """
        with self._lock:
            if self._finish_future is None:
                self._finish_future = self._worker.submit(self._finish)
            return self._finish_future

    def finish(self, timeout: float | None = None) -> LiveResult:
        """Generate the last partial clip and wait for every clip; safe to call again."""
        return self.finish_async().result(timeout)

    def cancel(self) -> None:
        """Stop generating after the frame being written; ground truth stays complete."""
        self._cancel.set()
        self._update(cancelled=True)

    def close(self) -> LiveResult:
        """finish(), then stop the threads."""
        try:
            return self.finish()
        finally:
            self._io.shutdown()
            self._worker.shutdown()

    def __enter__(self) -> LiveAugmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- worker thread

    def _guarded(self, task: Callable[..., None], *args: Any) -> None:
        # An exception in a Future nobody reads would vanish: report it instead.
        try:
            task(*args)
        except Exception as exc:
            log.exception("live capture: generation failed")
            self._fail(f"generation failed: {exc}")

    def _ensure_model(self) -> bool:
        if self._failed:
            return False
        if self._model is None:
            try:
                self._model = self._load_model(self.spec.model)
            except Exception as exc:
                self._fail(f"cannot load model {self.spec.model.id!r}: {exc}")
                return False
            for note in self._model.notes:
                log.warning("%s", note)
            self._update(notes=list(self._model.notes))
        if self._clip_length is None:
            needs = self._model.model.requirements
            self._clip_length = self.spec.input.clip_length or needs.frames_per_chunk
        return True

    def _frame_written(self, frame: int, written: Future[None]) -> None:
        try:
            written.result()
        except Exception as exc:
            self._fail(f"could not write frame {frame} to {self.root}: {exc}")
            return
        self._written = frame + 1
        if self._cancel.is_set() or not self._ensure_model():
            return
        assert self._clip_length is not None  # set by _ensure_model
        while (
            self._written - self._next_start >= self._clip_length
            and not self._failed
            and not self._cancel.is_set()
        ):
            self._run_frames(self._next_start, self._next_start + self._clip_length)

    def _run_frames(self, start: int, stop: int) -> None:
        """Hand frames [start, stop) of every camera to the run loop."""
        self._run((start, stop))
        self._next_start = stop

    def _run(self, frames: tuple[int, int] | None) -> None:
        try:
            run_job(self.spec, self._model, frames=frames, progress=self._progress)
        except _Cancelled:
            log.warning(
                "live capture cancelled; every frame written so far is complete, and "
                "`cosmos-bridge run` with the same spec resumes it"
            )
        except BridgeError as exc:
            self._fail(str(exc))
        except Exception as exc:
            log.exception("live capture: the run loop failed")
            self._fail(f"the run loop failed: {exc}")

    def _finish(self) -> LiveResult:
        try:
            go = not self._cancel.is_set() and self._written > 0 and self._ensure_model()
            if go and self._written > self._next_start:
                self._run_frames(self._next_start, self._written)
            if go and not self._failed and not self._cancel.is_set():
                # Every frame is done: this pass only writes run.json for the whole capture.
                self._run(None)
        finally:
            # Every frame write and clip ran before this task (one worker, in order):
            # nothing is left for the threads, which end once this returns.
            self._io.shutdown(wait=False)
            self._worker.shutdown(wait=False)
            self._update(finished=True)
        s = self.status
        return LiveResult(
            self.root, self.run_dir, s.frames_captured, s.frames_generated, s.error, s.cancelled
        )

    # ---------------------------------------------------------------- status

    def _fail(self, message: str) -> None:
        self._failed = True
        log.error("live capture: %s", message)
        if self.status.error is None:
            self._update(error=message)

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self.status = dataclasses.replace(self.status, **changes)
            snapshot = dataclasses.replace(self.status, notes=list(self.status.notes))
        if self._on_status is not None:
            self._on_status(snapshot)


def _prepare_folder(root: Path, seed: int) -> None:
    """Create the output folder, prove it takes files, and write BasicWriter's metadata.txt."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_metadata(root, seed)
    except OSError as exc:
        raise InputError(
            f"cannot write to the output folder ({exc.strerror or exc})", root, "output_dir"
        ) from exc
    if is_basicwriter_folder(root) or any(
        p.is_dir() and is_render_product_folder(p) for p in root.iterdir()
    ):
        log.warning(
            "%s already holds captured frames; frames this capture does not overwrite are "
            "generated too when it finishes (use an empty folder to avoid that)",
            root,
        )
