"""One job over a Ray cluster, with the outputs and guarantees of the run in one process.

The job's work items are its clips x variations still to do (as the manifest says;
a variation done before is an item too where its clip's report is to redo: it is read
back, scored and judged again). A worker generates an item's retries itself, with the
quality gate of the run in one process; the driver places the result where its verdict
says (its variation's folder, or rejected/).

A pool of Ray actors, one model each (one per GPU by default), kept loaded across items,
takes them; each worker reads its clip from the dataset path every
node sees, builds the controls, generates, encodes the PNGs, scores them and encodes
the preview, and sends all that back. Only the driver writes, through the same
functions as the run in one process (:mod:`bridge_core.run.loop`): lock, atomic
writes, manifest, report, run.json, resume. So a folder written on Ray has the same
bytes as one written in one process, run.json aside (timing, and the workers it lists).

Why an actor pool the driver feeds, and not Ray Data's ``map_batches``: the driver has
to hold the run folder's lock and write each item the moment it is back, and to know
which items are still out when a worker dies or the job stops; Ray Data owns its
outputs' flow and would have to be taken apart for that. An item writes nothing, so
redoing one is always safe: Ray restarts a killed worker (its model loaded again) and
retries the items it held, and the driver writes each item once, when its result comes.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import RGB, Clip
from bridge_core.errors import BridgeError, InputError
from bridge_core.quality.critic import make_critic
from bridge_core.run.fit import fit_controls, plan_fit
from bridge_core.run.loop import (
    ClipPlan,
    ClipSide,
    OpenRun,
    RunProgress,
    RunResult,
    VariationOutput,
    VariationPlan,
    check_job,
    clip_controls,
    clip_judge,
    clip_side,
    finish_variation,
    generate_judged,
    job_clips,
    judge_kept,
    open_run,
    read_back,
    write_report,
    write_variation,
)
from bridge_core.run.models import ResolvedModel, resolve_model
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.models import JobSpec, RaySpec

log = logging.getLogger(__name__)

ModelFactory = Callable[[], ResolvedModel]
"""Builds the model in a worker: picklable, as Ray sends it to every worker."""

# Items a worker holds at once: one on the model, one having its controls built.
ITEMS_PER_WORKER = 2
# Times an item is tried again on a restarted worker before the job stops on it.
ITEM_RETRIES = 3
_PING_SECONDS = 2.0


class RayNotInstalledError(InputError):
    """The ray extra is not installed."""


@dataclass(frozen=True)
class WorkItem:
    """One variation of one clip: the ``clip``-th of :func:`job_clips`' list."""

    clip: int
    camera: str
    frame_indices: tuple[int, ...]
    variation: VariationPlan
    settings: SamplingSettings


@dataclass
class ItemResult:
    """What a worker sends back for an item; nothing of it is written yet."""

    output: VariationOutput
    side: ClipSide
    stage_seconds: dict[str, float]
    seconds: float
    pid: int


@dataclass
class ModelRecord:
    """What the driver records of the workers' model (ResolvedModel less the model)."""

    id: str
    revision: str | None
    weights: dict[str, str]
    random: bool
    notes: list[str]
    requirements: ModelRequirements


class _RemoteModel:
    """The driver's view of the workers' model: its requirements; it generates nothing."""

    def __init__(self, requirements: ModelRequirements):
        self.requirements = requirements

    def generate(self, *args: Any) -> np.ndarray:
        raise RuntimeError("on Ray the model runs in the workers, not in the driver")


class Worker:
    """A Ray actor: one model, kept loaded; runs :class:`WorkItem`s of one job."""

    def __init__(
        self,
        spec: JobSpec,
        model_factory: ModelFactory,
        frames: tuple[int, int | None] | None,
    ):
        self.spec = spec
        self.frames = frames
        self.resolved = model_factory()
        self.critic = make_critic(spec.quality)
        self._clips: list[Clip] | None = None
        self._clips_lock = threading.Lock()
        # A second item builds its controls while the first is on the model.
        self._model_lock = threading.Lock()

    def describe(self) -> tuple[ModelRecord, str, int]:
        """The model's record, this worker's node address and process id."""
        import ray

        r = self.resolved
        record = ModelRecord(r.id, r.revision, r.weights, r.random, r.notes, r.model.requirements)
        return record, ray.util.get_node_ip_address(), os.getpid()

    def ping(self) -> int:
        return os.getpid()

    def run(self, item: WorkItem, run_dir: str) -> ItemResult:
        """The item's outputs, computed as the run in one process computes them."""
        began = time.perf_counter()
        clip = self._clip(item)
        needs = self.resolved.model.requirements
        result = RunResult(Path(run_dir), total=0)
        try:
            stack = clip_controls(clip, self.spec, result)
            fit = plan_fit(clip.size, needs)
            with result.timed("metrics"):
                judge = clip_judge(clip, self.spec.quality, self.critic)
            variation = item.variation
            if variation.todo:
                with result.timed("fit"):
                    fitted = fit_controls(stack, fit)
                # The tries, and the critic where there is one, share the worker's GPU.
                with self._model_lock:
                    frames, tries = generate_judged(
                        fitted, fit, item.settings, variation, self.resolved, judge, result
                    )
            else:
                frames = read_back(variation, result.run_dir, result)
                tries = judge_kept(variation, frames, judge, result)
            clip.forget(clip.modalities - {RGB})
            side = clip_side(clip, stack, fit.model_size)
            output = finish_variation(frames, tries, variation.todo, result)
        finally:
            clip.release()
        return ItemResult(
            output, side, dict(result.stage_seconds), time.perf_counter() - began, os.getpid()
        )

    def _clip(self, item: WorkItem) -> Clip:
        with self._clips_lock:
            if self._clips is None:
                dataset = open_dataset(self.spec.input.dataset)
                needs = self.resolved.model.requirements
                self._clips = job_clips(self.spec, dataset, needs, self.frames)
        clip = self._clips[item.clip] if item.clip < len(self._clips) else None
        if (
            clip is None
            or clip.camera != item.camera
            or tuple(clip.frame_indices) != item.frame_indices
        ):
            raise InputError(
                f"this worker sees another dataset than the driver (clip {item.clip} should "
                f"be camera {item.camera!r} frames {item.frame_indices[0]}-"
                f"{item.frame_indices[-1]}); every node must see the same files at the "
                "same path",
                self.spec.input.dataset,
                "input.dataset",
            )
        return clip


@dataclass
class _WorkerStats:
    node: str
    pids: list[int]
    items: int = 0
    frames: int = 0
    busy_seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "pid": self.pids[-1],
            "restarts": len(self.pids) - 1,
            "items": self.items,
            "frames": self.frames,
            "busy_seconds": round(self.busy_seconds, 3),
            "frames_per_second": (
                round(self.frames / self.busy_seconds, 3) if self.busy_seconds else None
            ),
        }


@dataclass
class _Pool:
    actors: list[Any]
    records: list[ModelRecord]
    stats: list[_WorkerStats]
    address: str


def run_job_on_ray(
    spec: JobSpec,
    model_factory: ModelFactory | None = None,
    frames: tuple[int, int | None] | None = None,
    force: bool = False,
    progress: RunProgress | None = None,
    *,
    ray_spec: RaySpec | None = None,
    model_id: str | None = None,
    checked: bool = False,
    on_model: Callable[[ResolvedModel], None] | None = None,
) -> RunResult:
    """:func:`bridge_core.run.loop.run_job` with the model in a pool of Ray workers.

    model_factory: builds the model in each worker (default: ``resolve_model`` of the
    spec's model, or ``model_id``); on_model: told what the workers loaded (its notes)
    before the first item; ray_spec: where and how wide (default: the spec's
    ``ray`` section, else :class:`RaySpec`'s defaults). Ray is joined or started here
    (``ray_spec.address``), or used as it is where this process already joined it. The
    run folder is written by this process alone; the dataset must be at the same path
    on every node. Errors as the run in one process raises them.
    """
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"--ray needs the ray extra ({exc}); install it with: pip install -e '.[ray]'"
        ) from exc
    if not checked:
        check_job(spec, frames)  # before any worker loads a model
    settings = ray_spec or spec.ray or RaySpec()
    factory = model_factory or functools.partial(resolve_model, spec.model, model_id)
    address = _join(ray, settings.address)
    pool = _start_workers(ray, spec, factory, frames, settings, address)
    try:
        resolved = _driver_model(pool)
        if on_model is not None:
            on_model(resolved)
        with open_run(spec, resolved, frames, force, progress, checked=True) as run:
            workers = run.run_record.setdefault("workers", {"ray": pool.address, "pool": []})
            try:
                _drive(ray, run, pool, progress)
            finally:
                workers["pool"] = [s.record() for s in pool.stats]
        return run.result
    finally:
        for actor in pool.actors:
            ray.kill(actor)


def _join(ray: Any, address: str) -> str:
    """Join or start Ray as ``address`` says; what was joined, for run.json."""
    if ray.is_initialized():
        return "joined by the caller"
    if address == "local":
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        return "local"
    if address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
            return "auto"
        except ConnectionError:
            log.info("no Ray cluster found; starting one on this machine")
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
            return "local"
    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError as exc:
        raise InputError(
            f"no Ray cluster answers at {address!r} ({exc})", field="ray.address"
        ) from None
    return address


def _start_workers(
    ray: Any,
    spec: JobSpec,
    factory: ModelFactory,
    frames: tuple[int, int | None] | None,
    settings: RaySpec,
    address: str,
) -> _Pool:
    resources = ray.cluster_resources()
    gpus = settings.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    count = settings.workers
    if count is None:
        fits = (
            resources.get("GPU", 0) / gpus
            if gpus
            else resources.get("CPU", 1) / settings.cpus_per_worker
        )
        count = max(1, int(fits))
    remote = ray.remote(
        num_cpus=settings.cpus_per_worker,
        num_gpus=gpus,
        max_restarts=-1,
        max_task_retries=ITEM_RETRIES,
        max_concurrency=ITEMS_PER_WORKER + 1,  # the items, and a ping meanwhile
    )(Worker)
    actors = [remote.remote(spec, factory, frames) for _ in range(count)]
    try:
        described = ray.get([a.describe.remote() for a in actors])
    except ray.exceptions.RayTaskError as exc:
        for actor in actors:
            ray.kill(actor)
        raise _cause(exc) from None
    records = [record for record, _node, _pid in described]
    stats = [_WorkerStats(node, [pid]) for _record, node, pid in described]
    return _Pool(actors, records, stats, address)


def _driver_model(pool: _Pool) -> ResolvedModel:
    records = pool.records
    first = records[0]
    if any(r.weights != first.weights or r.requirements != first.requirements for r in records):
        raise InputError(
            "the workers loaded different models (weights or requirements differ); install "
            "the same package and weights on every node",
            field="model.id",
        )
    return ResolvedModel(
        _RemoteModel(first.requirements),
        first.id,
        first.revision,
        first.weights,
        first.random,
        first.notes,
    )


def _items(plans: list[ClipPlan]) -> list[WorkItem]:
    """Every variation of every clip whose report is to do, in the plans' order."""
    return [
        WorkItem(i, plan.clip.camera, tuple(plan.clip.frame_indices), v, plan.settings)
        for i, plan in enumerate(plans)
        if plan.report_todo
        for v in plan.variations
    ]


def _drive(ray: Any, run: OpenRun, pool: _Pool, progress: RunProgress | None) -> None:
    """Feed the workers and write every result as it comes back; a clip's report once all
    its variations are back. On any error the items still out are dropped (nothing of
    theirs was written) and the error is raised."""
    plans = run.plans
    run_dir = str(run.layout.run_dir)
    queue = deque(_items(plans))
    waiting = {i: len(p.variations) for i, p in enumerate(plans) if p.report_todo}
    outputs: dict[int, dict[str, VariationOutput]] = {i: {} for i in waiting}
    sides: dict[int, ClipSide] = {}
    out: dict[Any, tuple[WorkItem, int]] = {}

    def submit(worker: int) -> None:
        item = queue.popleft()
        out[pool.actors[worker].run.remote(item, run_dir)] = (item, worker)

    for worker in range(len(pool.actors)):
        for _ in range(ITEMS_PER_WORKER):
            if queue:
                submit(worker)
    alive = _Liveness(ray, pool, progress)
    while out:
        ready, _ = ray.wait(list(out), num_returns=1, timeout=_PING_SECONDS)
        alive.check()
        if not ready:
            continue
        item, worker = out.pop(ready[0])
        try:
            result: ItemResult = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        except ray.exceptions.RayActorError as exc:
            first, last = item.frame_indices[0], item.frame_indices[-1]
            raise BridgeError(
                f"worker {worker} was lost {ITEM_RETRIES + 1} times on camera "
                f"{item.camera!r} frames {first}-{last} ({type(exc).__name__}); the frames "
                "already written stay: run again to resume"
            ) from None
        _count(pool.stats[worker], item, result)
        plan = plans[item.clip]
        write_variation(run, plan, item.variation, result.output)
        outputs[item.clip][item.variation.variation.name] = result.output
        sides.setdefault(item.clip, result.side)
        for stage, seconds in result.stage_seconds.items():
            run.result.stage_seconds[stage] = run.result.stage_seconds.get(stage, 0.0) + seconds
        waiting[item.clip] -= 1
        if not waiting[item.clip]:
            write_report(run, plan, sides.pop(item.clip), outputs.pop(item.clip))
        if queue:
            submit(worker)


def _count(stats: _WorkerStats, item: WorkItem, result: ItemResult) -> None:
    stats.items += 1
    stats.frames += len(item.frame_indices) if item.variation.todo else 0
    stats.busy_seconds += result.seconds
    if result.pid != stats.pids[-1]:
        stats.pids.append(result.pid)


class _Liveness:
    """How many workers answer, every few seconds, for the progress bar."""

    def __init__(self, ray: Any, pool: _Pool, progress: RunProgress | None):
        self.ray, self.pool, self.progress = ray, pool, progress
        self.last = 0.0
        self.alive = len(pool.actors)
        self._report()

    def check(self) -> None:
        if time.monotonic() - self.last < _PING_SECONDS:
            return
        self.last = time.monotonic()
        pings = [a.ping.remote() for a in self.pool.actors]
        ready, pending = self.ray.wait(pings, num_returns=len(pings), timeout=_PING_SECONDS)
        for ref in pending:
            self.ray.cancel(ref)
        answered = 0
        for ref in ready:
            try:
                self.ray.get(ref)
                answered += 1
            except self.ray.exceptions.RayError:
                pass
        if answered != self.alive:
            self.alive = answered
            self._report()

    def _report(self) -> None:
        # A RunProgress may also show the workers (the CLI's bar does).
        if self.progress is not None and hasattr(self.progress, "workers"):
            self.progress.workers(self.alive, len(self.pool.actors))


def _cause(exc: Any) -> BaseException:
    """The exception a worker raised, as the run in one process would have raised it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
