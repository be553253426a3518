"""The run loop: spec -> dataset clips -> controls and weight maps -> model -> outputs.

For every clip the controls are built once, fitted to the model's resolution, and
every variation (prompt x seed) is generated from them; each frame is written beside
its labels (see :mod:`bridge_core.run.layout`), recorded in the manifest, and the
clip's report and metrics follow. What makes it safe to stop and rerun:

- every file appears whole (temporary name, then rename); inputs are only read;
- a frame counts as done when its manifest line names it with the same generation
  digest (controls, clip, model, sampling, prompt, seed) and its file exists, so a
  rerun of the same spec skips it, and a changed spec redoes it;
- seeds are derived from the variation's seed and the clip's identity, so a redone
  frame comes out the same;
- frames are written on a helper thread while the next clip is generated; whatever
  stops the loop (Ctrl-C, an error), the frames already generated are written first;
- one run at a time per run folder (a lock file).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bridge_core.controls.build import (
    build_control_stack,
    check_clip_inputs,
    check_control_source,
    modalities_needed,
    rgb_blurred_small,
    rgb_canny,
)
from bridge_core.controls.stack import ControlStack
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.files import read_json, read_rgb, read_text
from bridge_core.datasets.types import RGB, Clip, Dataset
from bridge_core.errors import InputError, SpecError
from bridge_core.outputs import check_inside, remove_temps, write_bytes_atomic
from bridge_core.parallel import for_each_frame
from bridge_core.report.contact_sheet import pick_frames
from bridge_core.report.run_report import (
    clip_sheet,
    preview_mp4,
    sheet_controls,
    write_clip_report,
)
from bridge_core.run.files import RunLock, encode_png, label_mode, place_label
from bridge_core.run.fit import Fit, fit_back, fit_controls, plan_fit
from bridge_core.run.layout import RUN_FILE, OutputLayout
from bridge_core.run.manifest import Manifest, ManifestEntry
from bridge_core.run.metrics import METRIC_PRESET, MetricReference
from bridge_core.run.models import ResolvedModel
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.models import PROMPT_MAX_CHARS, JobSpec, MaskRule, Variation
from bridge_core.weights.masks import check_mask_file

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
_PACKAGES = (
    "cosmos-transfer-bridge",
    "numpy",
    "opencv-python-headless",
    "pydantic",
    "av",
    "torch",
    "diffusers",
)


class RunProgress(Protocol):
    """What the loop reports while it runs (the CLI draws it as a progress bar)."""

    def start(self, total: int, done: int) -> None:
        """``total`` output frames selected, ``done`` of them already done."""

    def advance(self, frames: int) -> None:
        """``frames`` more output frames were written."""


@dataclass
class RunResult:
    """What a run did. Frame counts are output frames (input frames x variations)."""

    run_dir: Path
    total: int
    generated: int = 0
    skipped: int = 0
    label_mode: str = "symlink"
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: read, controls (+ weight maps), fit, model, write, metrics, report.
    With a model that leaves the CPU free, reading and controls overlap the model's time."""
    _stage_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - began
            with self._stage_lock:  # the next clip's controls are timed on another thread
                self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + elapsed


def digest(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def clip_seed(variation_seed: int, clip: Clip) -> int:
    """The seed a variation's clip is generated with: from the seed and the clip's identity.

    Every clip gets its own noise, and the same clip always the same, whichever other
    clips or frames are selected and however often the run is interrupted.
    """
    identity = f"{variation_seed}:{clip.camera}:{clip.frame_indices[0]}:{clip.frame_indices[-1]}"
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "little") >> 1


@dataclass
class VariationPlan:
    variation: Variation
    prompt: str
    seed: int
    generation_digest: str
    outputs: list[str]
    todo: bool


@dataclass
class ClipPlan:
    clip: Clip
    settings: SamplingSettings
    variations: list[VariationPlan]
    report_dir: str
    report_digest: str
    report_todo: bool

    @property
    def frames_todo(self) -> int:
        return sum(len(v.outputs) for v in self.variations if v.todo)


def _prompts(spec: JobSpec) -> list[tuple[Variation, str]]:
    out = []
    for variation in spec.variations:
        if variation.prompt is not None:
            out.append((variation, variation.prompt))
            continue
        path = variation.prompt_file
        # Up to 4 bytes a character in UTF-8; the characters are counted once decoded.
        text = read_text(path, PROMPT_MAX_CHARS * 4, InputError, "prompt_file").strip()
        if not text:
            raise InputError("the prompt file is empty", path, "prompt_file")
        if len(text) > PROMPT_MAX_CHARS:
            raise InputError(
                f"the prompt is {len(text):,} characters, more than {PROMPT_MAX_CHARS:,}",
                path,
                "prompt_file",
            )
        out.append((variation, text))
    return out


def _check_controls(spec: JobSpec, supported: tuple[str, ...]) -> None:
    missing = [n for n, c in spec.controls.items() if c.enabled and n not in supported]
    if missing:
        raise SpecError(
            f"the model has no branch for {', '.join(missing)} (it has {', '.join(supported)}); "
            "disable those controls or use another model",
            field="controls",
        )


@functools.cache  # installed packages do not change while the process runs
def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_job(spec: JobSpec, frames: tuple[int, int | None] | None = None) -> None:
    """Raise the BridgeError ``run_job`` would, for anything about the spec and the
    dataset that needs no model: prompt files, and every selected frame's files present,
    whole and of one size per camera; no other run writing into its run folder. Reads
    headers and label files, decodes nothing."""
    _prompts(spec)
    _check_inputs(spec, open_dataset(spec.input.dataset), _frame_range(spec, frames))


def _check_inputs(spec: JobSpec, dataset: Dataset, frame_range: tuple[int, int] | None) -> None:
    """:func:`check_job` for an open dataset, prompts aside."""
    # One clip per run of frames: what is checked does not depend on the clip length.
    clips = dataset.clips(spec.input.cameras, None, frame_range)
    for clip in clips:
        check_clip_inputs(clip, spec.controls)
    last_frame = max(clip.frame_indices[-1] for clip in clips)
    for control in spec.controls.values():
        if not control.enabled:
            continue
        if control.source_path is not None:
            check_control_source(control.source_path, last_frame)
        for rule in control.rules:
            if isinstance(rule, MaskRule):
                check_mask_file(rule.mask)
    RunLock(OutputLayout(dataset, spec.output.run_name).run_dir).refuse_if_held()


def _frame_range(spec: JobSpec, frames: tuple[int, int | None] | None) -> tuple[int, int] | None:
    """``frames`` or the spec's, with an open end made explicit."""
    frame_range = frames if frames is not None else spec.input.frames
    if frame_range is not None and frame_range[1] is None:
        return frame_range[0], sys.maxsize
    return frame_range


def job_clips(
    spec: JobSpec,
    dataset: Dataset,
    needs: ModelRequirements,
    frames: tuple[int, int | None] | None = None,
) -> list[Clip]:
    """The clips a run of ``spec`` works on, in order (a Ray worker finds its item's clip
    again by its place in this list)."""
    clip_length = spec.input.clip_length or needs.frames_per_chunk
    return dataset.clips(spec.input.cameras, clip_length, _frame_range(spec, frames))


@dataclass
class OpenRun:
    """A locked run folder and what was planned for it; the loop in this process and the
    Ray driver (:mod:`bridge_core.run.distributed`) write it through the same functions."""

    spec: JobSpec
    resolved: ResolvedModel
    layout: OutputLayout
    manifest: Manifest
    context: dict[str, Any]
    plans: list[ClipPlan]
    result: RunResult
    progress: RunProgress | None
    first_stack: ControlStack | None
    """The first clip's controls, built before anything was written."""
    run_record: dict[str, Any] = field(default_factory=dict)
    """Entries added to run.json (the Ray workers)."""


@contextlib.contextmanager
def open_run(
    spec: JobSpec,
    resolved: ResolvedModel,
    frames: tuple[int, int | None] | None = None,
    force: bool = False,
    progress: RunProgress | None = None,
    *,
    checked: bool = False,
) -> Iterator[OpenRun]:
    """Check the inputs, lock the run folder, plan every clip; on leaving, however it is
    left, rewrite the manifest and write run.json (status complete, interrupted or
    failed). Arguments as :func:`run_job`'s."""
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    needs = resolved.model.requirements
    _check_controls(spec, needs.supported_controls)
    prompts = _prompts(spec)
    dataset = open_dataset(spec.input.dataset)
    frame_range = _frame_range(spec, frames)
    if not checked:
        _check_inputs(spec, dataset, frame_range)
    clip_length = spec.input.clip_length or needs.frames_per_chunk
    clips = job_clips(spec, dataset, needs, frames)
    layout = OutputLayout(dataset, spec.output.run_name)
    result = RunResult(layout.run_dir, total=0)
    # Built before anything is written, so a control the data cannot give fails cleanly.
    first_stack = clip_controls(clips[0], spec, result)

    run_dir = check_inside(layout.run_dir, layout.dataset_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("the run folder exists and is not a folder", run_dir, "output.run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        removed = remove_temps(run_dir)
        if removed:
            log.warning("removed %d temporary file(s) an interrupted run left", removed)
        manifest = Manifest(run_dir)
        result.label_mode = label_mode(run_dir)
        context = {
            "controls": digest(spec.model_dump(mode="json")["controls"]),
            "model": {
                "id": resolved.id,
                "revision": resolved.revision,
                "weights": resolved.weights,
            },
        }
        plans = [
            _plan_clip(clip, spec, prompts, layout, manifest, context, force) for clip in clips
        ]
        manifest.forget(o for p in plans for v in p.variations if v.todo for o in v.outputs)
        result.total = sum(len(c.clip) * len(prompts) for c in plans)
        todo = sum(p.frames_todo for p in plans)
        result.skipped = result.total - todo
        if progress is not None:
            progress.start(result.total, result.skipped)
        run = OpenRun(
            spec, resolved, layout, manifest, context, plans, result, progress, first_stack
        )
        status = "failed"
        try:
            yield run
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            manifest.rewrite()
            result.seconds = time.perf_counter() - started
            result.metrics = _collect_metrics(plans, run_dir)
            _write_run_file(run, status, started_at, frames, force, clip_length)


def run_job(
    spec: JobSpec,
    resolved: ResolvedModel,
    frames: tuple[int, int | None] | None = None,
    force: bool = False,
    progress: RunProgress | None = None,
    *,
    checked: bool = False,
) -> RunResult:
    """Generate every selected frame of every variation of ``spec`` with ``resolved``, in
    this process (``bridge_core.run.distributed.run_job_on_ray`` spreads it over Ray).

    frames: (start, stop) overriding ``spec.input.frames``; force: redo frames already
    done. Bad input raises a BridgeError before anything is written (:func:`check_job`'s
    checks; ``checked``: the caller ran them on the same spec and frames, as the CLI does
    before the model loads). A KeyboardInterrupt leaves whole files and a manifest that
    lists exactly them; rerun to resume.
    """
    with open_run(spec, resolved, frames, force, progress, checked=checked) as run:
        _generate_all(run)
    return run.result


def _generate_all(run: OpenRun) -> None:
    """Every clip to do, in order: the model in this thread, the next clip's controls and
    the last clip's writing on helper threads."""
    spec, resolved, result, plans = run.spec, run.resolved, run.result, run.plans
    needs = resolved.model.requirements
    first_stack = run.first_stack
    # Two helper threads: one builds the next clip's controls while a GPU model
    # generates; one writes each generated clip (frames, report, metrics) while the
    # next one is generated. Clips are written in order, one at a time.
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="next-clip")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer")
    writing: Future[None] | None = None
    upcoming: Future[ControlStack] | None = None
    try:
        for i, plan in enumerate(plans):
            # The first clip's controls were built above, others maybe ahead of time.
            stack = upcoming.result() if upcoming is not None else first_stack
            first_stack = upcoming = None
            after = plans[i + 1] if i + 1 < len(plans) else None
            if needs.leaves_cpu_free and after is not None and after.report_todo:
                upcoming = ahead.submit(clip_controls, after.clip, spec, result)
            if not plan.report_todo:
                plan.clip.release()
                continue
            if writing is not None and writing.done():
                writing.result()  # what writing the clip before raised, before generating
            generated = _generate(
                plan, stack or clip_controls(plan.clip, spec, result), resolved, result
            )
            # One clip waits to be written at most: its frames and controls are in memory.
            if writing is not None:
                writing.result()
            writing = writer.submit(_write_clip, generated, run)
        if writing is not None:
            writing.result()
    finally:
        if upcoming is not None:
            upcoming.cancel()  # a clip being read finishes: it only reads
        # Frames already generated are written, whatever stopped the loop.
        _wait_for(writing, upcoming)
        ahead.shutdown()
        writer.shutdown()


def _wait_for(*futures: Future[Any] | None) -> None:
    """Wait until the helper threads' work is done (the writer's clip written). A Ctrl-C
    meanwhile is let go: leaving now would unlock the run folder while they still write.

    Waits on the futures, not by joining the threads: an interrupted Thread.join can
    leave the thread marked as finished, and the next join return at once."""
    pending = [f for f in futures if f is not None]
    while True:
        try:
            wait(pending)
            return
        except KeyboardInterrupt:
            log.warning("stopping once the frames already generated are written")


def _plan_clip(
    clip: Clip,
    spec: JobSpec,
    prompts: list[tuple[Variation, str]],
    layout: OutputLayout,
    manifest: Manifest,
    context: dict[str, Any],
    force: bool,
) -> ClipPlan:
    m = spec.model
    settings = SamplingSettings(
        num_steps=m.num_steps,
        guidance=m.guidance,
        # Conditional frames only join chunks; a clip must be longer than them.
        num_conditional_frames=min(m.num_conditional_frames, len(clip) - 1),
        sigma_max=m.sigma_max,
    )
    variations = []
    for variation, prompt in prompts:
        seed = clip_seed(variation.seed, clip)
        generation = digest(
            {
                **context,
                "clip": [clip.camera, clip.frame_indices],
                "sampling": asdict(settings),
                "prompt": prompt,
                "negative_prompt": variation.negative_prompt,
                "seed": seed,
            }
        )
        outputs = [layout.rgb(variation.name, f) for f in clip.frames]
        todo = force or not all(manifest.done(o, generation) for o in outputs)
        variations.append(VariationPlan(variation, prompt, seed, generation, outputs, todo))
    report_dir = layout.report(clip)
    report_digest = digest([v.generation_digest for v in variations])
    metrics_path = layout.run_dir / report_dir / METRICS_FILE
    report_todo = (
        force
        or any(v.todo for v in variations)
        or not metrics_path.is_file()
        or read_json(metrics_path).get("digest") != report_digest
    )
    return ClipPlan(clip, settings, variations, report_dir, report_digest, report_todo)


@dataclass
class _GeneratedClip:
    """A clip's generated frames, on their way to the writer thread."""

    plan: ClipPlan
    side: ClipSide
    frames: dict[str, np.ndarray]
    """Variation name -> [T,H,W,3] uint8 at the clip's size, for the variations to do."""


@dataclass
class ClipSide:
    """The clip's own part of its report, whichever variation it is written with."""

    controls: dict[str, np.ndarray]
    """The controls shrunk to the contact sheet's tiles (``sheet_controls``)."""
    input_rows: np.ndarray | None
    """[R,H,W,3] uint8: the input rgb at the sheet's rows (``pick_frames``); None: no rgb."""
    model_size: tuple[int, int]


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    sha256: str


@dataclass
class VariationOutput:
    """One variation of one clip, ready to be written (a Ray worker sends it back).

    encoded: the frames' PNGs in clip order; None where they were done before and stay
    sheet_rows: [R,H,W,3] uint8, the frames at the contact sheet's rows
    """

    encoded: list[EncodedFrame] | None
    scores: dict[str, float | None]
    sheet_rows: np.ndarray
    preview: bytes


def clip_side(clip: Clip, stack: ControlStack, model_size: tuple[int, int]) -> ClipSide:
    """The clip's part of its report; its rgb must be loaded, as ``clip_controls`` does."""
    rows = pick_frames(len(clip))
    input_rows = clip.stack(RGB)[rows] if RGB in clip.modalities else None
    return ClipSide(sheet_controls(stack), input_rows, model_size)


def metric_reference(clip: Clip) -> MetricReference | None:
    """The input's side of the metrics, once for every variation, shared with the
    controls where they made the same (Canny and blur at the same preset)."""
    if RGB not in clip.modalities:
        return None
    return MetricReference(rgb_canny(clip, METRIC_PRESET), rgb_blurred_small(clip, METRIC_PRESET))


def model_frames(
    fitted: ControlStack,
    fit: Fit,
    settings: SamplingSettings,
    variation: VariationPlan,
    resolved: ResolvedModel,
    result: RunResult,
) -> np.ndarray:
    """One variation of the clip from the model: [T,H,W,3] uint8 at the clip's size."""
    with result.timed("model"):
        generated = resolved.model.generate(
            fitted,
            variation.prompt,
            variation.variation.negative_prompt,
            variation.seed,
            settings,
        )
    with result.timed("fit"):
        return fit_back(np.asarray(generated), fit)


def read_back(variation: VariationPlan, run_dir: Path, result: RunResult) -> np.ndarray:
    """A variation done before, [T,H,W,3] uint8 from its files (its report is redone)."""
    with result.timed("read"):
        return np.stack([read_rgb(run_dir / o) for o in variation.outputs])


def finish_variation(
    frames: np.ndarray, reference: MetricReference | None, new: bool, result: RunResult
) -> VariationOutput:
    """Everything written of a variation's frames [T,H,W,3] uint8, computed: PNGs where
    ``new``, scores, the contact sheet's rows, the preview. Nothing is written."""
    with result.timed("write"):
        encoded = _encode_frames(frames) if new else None
    with result.timed("metrics"):
        scores = (
            {"edge_f1": None, "blur_ssim": None} if reference is None else reference.scores(frames)
        )
    with result.timed("report"):
        preview = preview_mp4(frames)
    return VariationOutput(encoded, scores, frames[pick_frames(len(frames))], preview)


def _generate(
    plan: ClipPlan, stack: ControlStack, resolved: ResolvedModel, result: RunResult
) -> _GeneratedClip:
    """Every variation of the clip that is to do, from the model; nothing is written."""
    fit = plan_fit(plan.clip.size, resolved.model.requirements)
    with result.timed("fit"):
        fitted = fit_controls(stack, fit) if plan.frames_todo else None
    frames = {
        v.variation.name: model_frames(fitted, fit, plan.settings, v, resolved, result)
        for v in plan.variations
        if v.todo
    }
    # The writer needs the rgb only (and what was derived from it, the metrics' side).
    plan.clip.forget(plan.clip.modalities - {RGB})
    return _GeneratedClip(plan, clip_side(plan.clip, stack, fit.model_size), frames)


def _write_clip(generated: _GeneratedClip, run: OpenRun) -> None:
    """The clip's frames beside their labels, each recorded in the manifest; then the
    clip's report and metrics (variations done before are read back for them)."""
    plan, result = generated.plan, run.result
    reference = metric_reference(plan.clip)
    outputs = {}
    for v in plan.variations:
        name = v.variation.name
        new = name in generated.frames
        frames = generated.frames[name] if new else read_back(v, run.layout.run_dir, result)
        outputs[name] = finish_variation(frames, reference, new, result)
        write_variation(run, plan, v, outputs[name])
    write_report(run, plan, generated.side, outputs)
    plan.clip.release()


def write_variation(
    run: OpenRun, plan: ClipPlan, variation: VariationPlan, output: VariationOutput
) -> None:
    """A variation's new frames beside their labels, each recorded in the manifest."""
    if output.encoded is None:
        return
    for frame, png, path in zip(plan.clip.frames, output.encoded, variation.outputs, strict=True):
        with run.result.timed("write"):
            _write_frame(frame, png, path, variation, run)
        run.result.generated += 1
        if run.progress is not None:
            run.progress.advance(1)


def write_report(
    run: OpenRun, plan: ClipPlan, side: ClipSide, outputs: dict[str, VariationOutput]
) -> None:
    """The clip's contact sheet and previews, then its metrics.json, which marks the
    report as done; ``outputs`` holds every variation of the clip."""
    run_dir = run.layout.run_dir
    report_dir = run_dir / plan.report_dir
    names = [v.variation.name for v in plan.variations]
    clip = plan.clip
    with run.result.timed("report"):
        sheet = clip_sheet(
            clip.frame_indices,
            side.input_rows,
            side.controls,
            {n: outputs[n].sheet_rows for n in names},
        )
        write_clip_report(report_dir, run_dir, sheet, {n: outputs[n].preview for n in names})
    metrics = {
        "digest": plan.report_digest,
        "camera": clip.camera,
        "frames": [clip.frame_indices[0], clip.frame_indices[-1]],
        "num_frames": len(clip),
        "model_size": list(side.model_size),
        "variations": {n: outputs[n].scores for n in names},
    }
    data = json.dumps(metrics, indent=2).encode()
    write_bytes_atomic(report_dir / METRICS_FILE, data, run_dir)


def clip_controls(clip: Clip, spec: JobSpec, result: RunResult) -> ControlStack:
    """Read what the controls need (the rgb among it, which the metrics and report need
    too; nothing else: instance ids only where a control asks for them), then build the
    controls and weight maps, timing both."""
    enabled = {name: c for name, c in spec.controls.items() if c.enabled}
    with result.timed("read"):
        clip.load(modalities_needed(clip, enabled) | ({RGB} & clip.modalities))
    with result.timed("controls"):
        return build_control_stack(clip, spec.controls)


def _encode_frames(frames: np.ndarray) -> list[EncodedFrame]:
    """PNG bytes and their sha256 of every frame [T,H,W,3], frames spread over the cores;
    the files are written after, in order (encoding writes nothing)."""
    encoded: list[EncodedFrame | None] = [None] * len(frames)

    def encode(t: int) -> None:
        data = encode_png(frames[t])
        encoded[t] = EncodedFrame(data, hashlib.sha256(data).hexdigest())

    for_each_frame(encode, len(frames))
    return encoded  # type: ignore[return-value]


def _write_frame(
    frame: Any, png: EncodedFrame, output: str, plan: VariationPlan, run: OpenRun
) -> None:
    """Labels first, then the rgb, then the manifest line: a line always names a whole frame."""
    layout = run.layout
    run_dir = layout.run_dir
    for source, rel in layout.labels(plan.variation.name, frame):
        place_label(source, run_dir / rel, run.result.label_mode, run_dir)
    write_bytes_atomic(run_dir / output, png.data, run_dir)
    run.manifest.append(
        [
            ManifestEntry(
                output=output,
                source=layout.source(frame),
                camera=frame.camera,
                frame=frame.index,
                variation=plan.variation.name,
                prompt=plan.prompt,
                seed=plan.seed,
                controls_digest=run.context["controls"],
                generation_digest=plan.generation_digest,
                sha256=png.sha256,
            )
        ]
    )


def _collect_metrics(plans: list[ClipPlan], run_dir: Path) -> dict[str, Any]:
    """Per-clip metrics of the clips whose report is current, and frame-weighted means."""
    clips = []
    for plan in plans:
        path = run_dir / plan.report_dir / METRICS_FILE
        if not path.is_file():
            continue
        metrics = read_json(path)
        if metrics.get("digest") == plan.report_digest:
            clips.append({k: v for k, v in metrics.items() if k != "digest"})
    means: dict[str, dict[str, float | None]] = {}
    names = [v.variation.name for v in plans[0].variations] if plans else []
    for name in names:
        means[name] = {}
        for key in ("edge_f1", "blur_ssim"):
            pairs = [
                (c["variations"][name][key], c["num_frames"])
                for c in clips
                if c["variations"][name][key] is not None
            ]
            weight = sum(n for _, n in pairs)
            means[name][key] = sum(v * n for v, n in pairs) / weight if weight else None
    return {"clips": clips, "mean": means}


def _write_run_file(
    run: OpenRun,
    status: str,
    started_at: datetime,
    frames: tuple[int, int | None] | None,
    force: bool,
    clip_length: int,
) -> None:
    spec, resolved, result = run.spec, run.resolved, run.result
    needs = resolved.model.requirements
    record = {
        "status": status,
        "spec": spec.model_dump(mode="json"),
        "overrides": {
            "model": resolved.id if resolved.id != spec.model.id else None,
            "frames": None if frames is None else list(frames),
            "force": force,
        },
        "model": {
            "id": resolved.id,
            "revision": resolved.revision,
            "random_weights": resolved.random,
            "weights_sha256": resolved.weights,
            "requirements": asdict(needs),
            "notes": resolved.notes,
        },
        "clip_length": clip_length,
        "label_files": result.label_mode,
        "packages": dict(_package_versions()),
        "timing": {
            "started": started_at.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(result.seconds, 3),
            "stages": {k: round(v, 3) for k, v in result.stage_seconds.items()},
            "frames_total": result.total,
            "frames_generated": result.generated,
            "frames_skipped": result.skipped,
            "seconds_per_generated_frame": (
                round(result.seconds / result.generated, 4) if result.generated else None
            ),
        },
        "metrics": result.metrics,
        **run.run_record,
    }
    data = json.dumps(record, indent=2).encode()
    write_bytes_atomic(result.run_dir / RUN_FILE, data, result.run_dir)
