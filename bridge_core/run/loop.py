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
- the quality gate (``quality:`` in the spec, bridge_core/quality) judges every clip as
  it is generated; one that fails is generated again with a seed derived from its own
  and the try, up to ``retries`` times, and one that still fails goes under
  ``rejected/``, never into its variation's folder. Every try is a manifest line. A
  rejected clip is done like an accepted one; when the gate's settings change, the
  frames kept (in the variation's folder or under rejected/) are judged again and moved
  where the new verdict puts them, without generating;
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
from bridge_core.datasets.types import INSTANCE, RGB, SEMANTIC, Clip, Dataset
from bridge_core.errors import InputError, SpecError
from bridge_core.outputs import check_inside, remove_output, remove_temps, write_bytes_atomic
from bridge_core.parallel import for_each_frame
from bridge_core.quality.checks import boundary_band
from bridge_core.quality.critic import make_critic
from bridge_core.quality.gate import (
    SCORE_NAMES,
    ClipCritic,
    ClipJudge,
    Judged,
    attempt_seed,
    gate_settings,
    worst_margin,
)
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
from bridge_core.run.manifest import AttemptEntry, Manifest, ManifestEntry
from bridge_core.run.metrics import METRIC_PRESET, MetricReference
from bridge_core.run.models import ResolvedModel
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.models import PROMPT_MAX_CHARS, JobSpec, MaskRule, QualitySpec, Variation
from bridge_core.weights.masks import check_mask_file

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
# The gate digest of a run with the gate off: every clip is accepted as it is.
GATE_OFF = "off"
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
    rejected: int = 0
    """Frames placed under rejected/ (the gate rejected their clip), this run."""
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


def gate_digest(quality: QualitySpec) -> str:
    """What a verdict was made under: the gate's settings, or GATE_OFF."""
    return digest(gate_settings(quality)) if quality.enabled else GATE_OFF


@dataclass(frozen=True)
class Try:
    """One generation of a clip's variation (or the frames kept of one), judged."""

    attempt: int
    seed: int
    generation_digest: str
    judged: Judged

    @property
    def accepted(self) -> bool:
        return self.judged.verdict.accepted


@dataclass
class VariationPlan:
    """One variation of one clip. seed and generation_digest are the first try's."""

    variation: Variation
    prompt: str
    seed: int
    generation_digest: str
    outputs: list[str]
    todo: bool
    tries: list[AttemptEntry] = field(default_factory=list)
    """The tries recorded before; where not todo, the last one's frames are kept."""
    kept: list[str] = field(default_factory=list)
    """Where not todo, the files of the frames kept: ``outputs``, or under rejected/."""

    def attempt(self, attempt: int) -> tuple[int, str]:
        """Seed and generation digest of try ``attempt`` (0: the first)."""
        if attempt == 0:
            return self.seed, self.generation_digest
        return attempt_seed(self.seed, attempt), digest([self.generation_digest, attempt])

    def judged_under(self) -> str:
        """The gate digest the kept frames were last judged under."""
        return self.tries[-1].gate_digest if self.tries else GATE_OFF


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


def _check_sampling(spec: JobSpec, needs: ModelRequirements) -> None:
    """A distilled student runs only in its own step counts, without guidance."""
    steps, m = needs.sampling_steps, spec.model
    if steps is not None and m.num_steps not in steps:
        raise SpecError(
            f"the model samples in {', '.join(map(str, steps))} step(s) only (a distilled "
            f"student), not {m.num_steps}",
            field="model.num_steps",
        )
    if not needs.takes_guidance and m.guidance != 0:
        raise SpecError(
            f"the model has its guidance built in (a distilled student): set it to 0, "
            f"not {m.guidance:g}",
            field="model.guidance",
        )


def model_entry(spec: JobSpec, resolved: ResolvedModel) -> dict[str, Any]:
    """What the manifest says made a frame: the model, how it sampled, a student's teacher."""
    entry = {
        "id": resolved.id,
        "revision": resolved.revision,
        "num_steps": spec.model.num_steps,
        "guidance": spec.model.guidance,
    }
    if resolved.student is not None:
        entry["teacher"] = resolved.student["teacher"]
    return entry


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
    gate: str = GATE_OFF
    """The gate digest of this run (:func:`gate_digest`)."""
    critic: ClipCritic | None = None
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
    _check_sampling(spec, needs)
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
        gate = gate_digest(spec.quality)
        plans = [
            _plan_clip(clip, spec, prompts, layout, manifest, context, gate, force)
            for clip in clips
        ]
        manifest.forget(o for p in plans for v in p.variations if v.todo for o in v.outputs)
        result.total = sum(len(c.clip) * len(prompts) for c in plans)
        todo = sum(p.frames_todo for p in plans)
        result.skipped = result.total - todo
        if progress is not None:
            progress.start(result.total, result.skipped)
        run = OpenRun(
            spec,
            resolved,
            layout,
            manifest,
            context,
            plans,
            result,
            progress,
            first_stack,
            gate,
            make_critic(spec.quality),
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
            generated = _generate(plan, stack or clip_controls(plan.clip, spec, result), run)
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
    gate: str,
    force: bool,
) -> ClipPlan:
    m = spec.model
    settings = SamplingSettings(
        num_steps=m.num_steps,
        guidance=m.guidance,
        # Conditional frames only join chunks; a clip must be longer than them.
        num_conditional_frames=min(m.num_conditional_frames, len(clip) - 1),
        sigma_max=m.sigma_max,
        guide_controls=m.guide_controls,
    )
    sampling = asdict(settings)
    if not settings.guide_controls:
        del sampling["guide_controls"]  # so runs from before the option keep their digests
    variations = []
    for variation, prompt in prompts:
        seed = clip_seed(variation.seed, clip)
        generation = digest(
            {
                **context,
                "clip": [clip.camera, clip.frame_indices],
                "sampling": sampling,
                "prompt": prompt,
                "negative_prompt": variation.negative_prompt,
                "seed": seed,
            }
        )
        outputs = [layout.rgb(variation.name, f) for f in clip.frames]
        tries = [] if force else manifest.chain(generation)
        kept = None if force else _kept(manifest, generation, tries, outputs)
        plan = VariationPlan(variation, prompt, seed, generation, outputs, kept is None, tries)
        plan.kept = kept or []
        variations.append(plan)
    report_dir = layout.report(clip)
    report_digest = digest([[v.generation_digest for v in variations], gate])
    metrics_path = layout.run_dir / report_dir / METRICS_FILE
    report_todo = (
        force
        or any(v.todo or _to_judge(v, manifest, gate) for v in variations)
        or not metrics_path.is_file()
        or read_json(metrics_path).get("digest") != report_digest
    )
    return ClipPlan(clip, settings, variations, report_dir, report_digest, report_todo)


def _kept(
    manifest: Manifest, generation: str, tries: list[AttemptEntry], outputs: list[str]
) -> list[str] | None:
    """The files of the frames a variation kept from an earlier run (its last try's:
    accepted, in the variation's folder; rejected, under rejected/), or None: to do."""
    last = tries[-1] if tries else None
    if last is None or last.accepted:
        made = last.generation_digest if last else generation
        return outputs if all(manifest.done(o, made) for o in outputs) else None
    whole = last.kept and all((manifest.run_dir / k).is_file() for k in last.kept)
    return last.kept if whole else None


def _to_judge(variation: VariationPlan, manifest: Manifest, gate: str) -> bool:
    """Whether kept frames are to be judged again: under other gate settings, or rejected
    while frames of the variation's are still in its folder (a run killed moving them)."""
    if variation.judged_under() != gate:
        return True
    rejected = variation.kept != variation.outputs
    return rejected and any(o in manifest.entries for o in variation.outputs)


@dataclass
class _GeneratedClip:
    """A clip's generated frames, on their way to the writer thread."""

    plan: ClipPlan
    side: ClipSide
    judge: ClipJudge
    frames: dict[str, np.ndarray]
    """Variation name -> [T,H,W,3] uint8 at the clip's size, for the variations to do."""
    tries: dict[str, list[Try]]
    """Variation name -> its tries, the last one's frames in ``frames``."""


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
    tries: the tries judged now, in order; the last one's frames are these (where kept
        from before, that try judged again)
    sheet_rows: [R,H,W,3] uint8, the frames at the contact sheet's rows
    """

    encoded: list[EncodedFrame] | None
    tries: list[Try]
    sheet_rows: np.ndarray
    preview: bytes

    @property
    def final(self) -> Try:
        return self.tries[-1]


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


def clip_judge(clip: Clip, quality: QualitySpec, critic: ClipCritic | None) -> ClipJudge:
    """The quality gate's input side of a clip (its rgb and segmentation loaded, as
    ``clip_controls`` leaves them), once for every variation and try."""
    have = clip.modalities
    modality = SEMANTIC if SEMANTIC in have else INSTANCE if INSTANCE in have else None
    reference = metric_reference(clip)
    band = None
    if modality is not None and reference is not None:
        band = boundary_band(clip.stack(modality), reference.blurred.shape[1:3])
    return ClipJudge(quality, reference, band, critic)


def model_frames(
    fitted: ControlStack,
    fit: Fit,
    settings: SamplingSettings,
    variation: VariationPlan,
    seed: int,
    resolved: ResolvedModel,
    result: RunResult,
) -> np.ndarray:
    """One variation of the clip from the model: [T,H,W,3] uint8 at the clip's size."""
    with result.timed("model"):
        generated = resolved.model.generate(
            fitted, variation.prompt, variation.variation.negative_prompt, seed, settings
        )
    with result.timed("fit"):
        return fit_back(np.asarray(generated), fit)


def generate_judged(
    fitted: ControlStack,
    fit: Fit,
    settings: SamplingSettings,
    variation: VariationPlan,
    resolved: ResolvedModel,
    judge: ClipJudge,
    result: RunResult,
) -> tuple[np.ndarray, list[Try]]:
    """A variation of the clip from the model, judged; generated again with a derived
    seed while it is rejected and retries are left. The last try's frames [T,H,W,3]
    uint8, and every try."""
    quality = judge.quality
    tries: list[Try] = []
    for attempt in range(1 + quality.retries if quality.enabled else 1):
        seed, generation = variation.attempt(attempt)
        frames = model_frames(fitted, fit, settings, variation, seed, resolved, result)
        with result.timed("metrics"):
            tries.append(Try(attempt, seed, generation, judge.judge(frames)))
        if tries[-1].accepted:
            break
        log.info(
            "%s: try %d rejected: %s",
            variation.outputs[0],
            attempt,
            "; ".join(tries[-1].judged.verdict.reasons),
        )
    return frames, tries


def judge_kept(
    variation: VariationPlan, frames: np.ndarray, judge: ClipJudge, result: RunResult
) -> list[Try]:
    """The frames [T,H,W,3] uint8 kept of a variation's last try, judged again."""
    attempt = variation.tries[-1].attempt if variation.tries else 0
    with result.timed("metrics"):
        return [Try(attempt, *variation.attempt(attempt), judge.judge(frames))]


def read_back(variation: VariationPlan, run_dir: Path, result: RunResult) -> np.ndarray:
    """A variation done before, [T,H,W,3] uint8 from its kept files (its report is redone)."""
    with result.timed("read"):
        return np.stack([read_rgb(run_dir / o) for o in variation.kept])


def finish_variation(
    frames: np.ndarray, tries: list[Try], new: bool, result: RunResult
) -> VariationOutput:
    """Everything written of a variation's frames [T,H,W,3] uint8 (the last of ``tries``),
    computed: PNGs where ``new``, the contact sheet's rows, the preview. Nothing is written."""
    with result.timed("write"):
        encoded = _encode_frames(frames) if new else None
    with result.timed("report"):
        preview = preview_mp4(frames)
    return VariationOutput(encoded, tries, frames[pick_frames(len(frames))], preview)


def _generate(plan: ClipPlan, stack: ControlStack, run: OpenRun) -> _GeneratedClip:
    """Every variation of the clip that is to do, from the model, judged; nothing is
    written."""
    resolved, result = run.resolved, run.result
    fit = plan_fit(plan.clip.size, resolved.model.requirements)
    with result.timed("fit"):
        fitted = fit_controls(stack, fit) if plan.frames_todo else None
    with result.timed("metrics"):
        judge = clip_judge(plan.clip, run.spec.quality, run.critic)
    frames, tries = {}, {}
    for v in plan.variations:
        if v.todo:
            name = v.variation.name
            frames[name], tries[name] = generate_judged(
                fitted, fit, plan.settings, v, resolved, judge, result
            )
    # The writer needs the rgb only (and what was derived from it, the judge's side).
    plan.clip.forget(plan.clip.modalities - {RGB})
    side = clip_side(plan.clip, stack, fit.model_size)
    return _GeneratedClip(plan, side, judge, frames, tries)


def _write_clip(generated: _GeneratedClip, run: OpenRun) -> None:
    """The clip's frames beside their labels (or under rejected/), each recorded in the
    manifest; then the clip's report and metrics (variations done before are read back
    for them, and judged again)."""
    plan, result = generated.plan, run.result
    outputs = {}
    for v in plan.variations:
        name = v.variation.name
        if name in generated.frames:
            frames, tries = generated.frames[name], generated.tries[name]
        else:
            frames = read_back(v, run.layout.run_dir, result)
            tries = judge_kept(v, frames, generated.judge, result)
        outputs[name] = finish_variation(frames, tries, name in generated.frames, result)
        write_variation(run, plan, v, outputs[name])
    write_report(run, plan, generated.side, outputs)
    plan.clip.release()


def write_variation(
    run: OpenRun, plan: ClipPlan, variation: VariationPlan, output: VariationOutput
) -> None:
    """A variation's frames where its verdict puts them: accepted, beside their labels,
    each recorded in the manifest; rejected, under rejected/ with its scores. Then its
    tries, recorded; then what an earlier verdict left elsewhere, removed (kept frames
    judged otherwise now are moved)."""
    layout, result, run_dir = run.layout, run.result, run.layout.run_dir
    final = output.final
    places = (
        variation.outputs if final.accepted else [layout.rejected(o) for o in variation.outputs]
    )
    pngs = output.encoded
    if pngs is None and variation.kept != places:
        with result.timed("read"):
            pngs = [_read_encoded(run_dir / k) for k in variation.kept]
    with result.timed("write"):
        if pngs is not None:
            for frame, png, path in zip(plan.clip.frames, pngs, places, strict=True):
                if final.accepted:
                    _write_frame(frame, png, path, variation, final, run)
                else:
                    write_bytes_atomic(run_dir / path, png.data, run_dir)
        if not final.accepted:
            _write_rejected_scores(run, plan, variation, output)
        _record_tries(run, plan, variation, output, places)
        _remove_elsewhere(run, plan, variation, final.accepted)
    if output.encoded is not None:
        count = len(output.encoded)
        if final.accepted:
            result.generated += count
        else:
            result.rejected += count
        if run.progress is not None:
            run.progress.advance(count)


def _read_encoded(path: Path) -> EncodedFrame:
    data = path.read_bytes()
    return EncodedFrame(data, hashlib.sha256(data).hexdigest())


def _write_rejected_scores(
    run: OpenRun, plan: ClipPlan, variation: VariationPlan, output: VariationOutput
) -> None:
    """Beside a rejected clip's frames: every try's scores and reasons."""
    record = {
        "camera": plan.clip.camera,
        "frames": [plan.clip.frame_indices[0], plan.clip.frame_indices[-1]],
        "variation": variation.variation.name,
        "tries": [
            {
                "attempt": t.attempt,
                "seed": t.seed,
                "scores": t.judged.scores,
                "reasons": t.judged.verdict.reasons,
            }
            for t in output.tries
        ],
    }
    run_dir = run.layout.run_dir
    path = run_dir / run.layout.rejected_scores(variation.variation.name, plan.clip)
    write_bytes_atomic(path, json.dumps(record, indent=2).encode(), run_dir)


def _record_tries(
    run: OpenRun,
    plan: ClipPlan,
    variation: VariationPlan,
    output: VariationOutput,
    places: list[str],
) -> None:
    """The tries' manifest lines, where the gate judged them (or judged them before);
    none where nothing changed."""
    if run.gate == GATE_OFF and not variation.tries:
        return
    clip = plan.clip
    entries = [
        AttemptEntry(
            camera=clip.camera,
            first=clip.frame_indices[0],
            last=clip.frame_indices[-1],
            variation=variation.variation.name,
            chain=variation.generation_digest,
            attempt=t.attempt,
            seed=t.seed,
            generation_digest=t.generation_digest,
            gate_digest=run.gate,
            accepted=t.accepted,
            scores=t.judged.scores,
            reasons=t.judged.verdict.reasons,
            kept=places if t is output.final else [],
        )
        for t in output.tries
    ]
    if output.encoded is None and variation.tries and entries == variation.tries[-1:]:
        return
    run.manifest.record_attempts(entries)


def _remove_elsewhere(
    run: OpenRun, plan: ClipPlan, variation: VariationPlan, accepted: bool
) -> None:
    """An accepted clip's frames under rejected/, or a rejected one's in its variation's
    folder (with their label files and manifest lines), left by an earlier verdict."""
    layout, run_dir = run.layout, run.layout.run_dir
    name = variation.variation.name
    if accepted:
        stale = [layout.rejected(o) for o in variation.outputs]
        stale.append(layout.rejected_scores(name, plan.clip))
    else:
        listed = [o for o in variation.outputs if o in run.manifest.entries]
        stale = list(variation.outputs)
        for frame in plan.clip.frames:
            stale += [rel for _source, rel in layout.labels(name, frame)]
    for rel in stale:
        if (run_dir / rel).is_file() or (run_dir / rel).is_symlink():
            remove_output(run_dir / rel, run_dir)
    if not accepted:
        run.manifest.forget(listed)


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
            {
                n: "; ".join(outputs[n].final.judged.verdict.reasons)
                for n in names
                if not outputs[n].final.accepted
            },
        )
        write_clip_report(report_dir, run_dir, sheet, {n: outputs[n].preview for n in names})
    metrics = {
        "digest": plan.report_digest,
        "camera": clip.camera,
        "frames": [clip.frame_indices[0], clip.frame_indices[-1]],
        "num_frames": len(clip),
        "model_size": list(side.model_size),
        "variations": {n: _clip_scores(outputs[n], run.spec.quality) for n in names},
    }
    data = json.dumps(metrics, indent=2).encode()
    write_bytes_atomic(report_dir / METRICS_FILE, data, run_dir)


def _clip_scores(output: VariationOutput, quality: QualitySpec) -> dict[str, Any]:
    """A variation's line in a clip's metrics.json: scores, verdict, tries, margin."""
    final = output.final
    return {
        **final.judged.scores,
        "accepted": final.accepted,
        "reasons": final.judged.verdict.reasons,
        "tries": final.attempt + 1,
        "margin": worst_margin(final.judged.scores, quality),
    }


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
    frame: Any, png: EncodedFrame, output: str, plan: VariationPlan, made: Try, run: OpenRun
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
                seed=made.seed,
                controls_digest=run.context["controls"],
                generation_digest=made.generation_digest,
                sha256=png.sha256,
                model=model_entry(run.spec, run.resolved),
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
    acceptance: dict[str, dict[str, Any]] = {}
    names = [v.variation.name for v in plans[0].variations] if plans else []
    for name in names:
        judged = [c for c in clips if name in c["variations"]]
        accepted = [c for c in judged if c["variations"][name].get("accepted", True)]
        acceptance[name] = {
            "clips": len(judged),
            "accepted": len(accepted),
            "rate": len(accepted) / len(judged) if judged else None,
        }
        # The means are of what the variation's folder holds: its accepted clips.
        means[name] = {}
        for key in SCORE_NAMES:
            pairs = [
                (c["variations"][name][key], c["num_frames"])
                for c in accepted
                if c["variations"][name].get(key) is not None
            ]
            weight = sum(n for _, n in pairs)
            means[name][key] = sum(v * n for v, n in pairs) / weight if weight else None
    return {"clips": clips, "mean": means, "acceptance": acceptance}


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
            "student": resolved.student,
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
            "frames_rejected": result.rejected,
            "seconds_per_generated_frame": (
                round(result.seconds / result.generated, 4) if result.generated else None
            ),
        },
        "metrics": result.metrics,
        **run.run_record,
    }
    data = json.dumps(record, indent=2).encode()
    write_bytes_atomic(result.run_dir / RUN_FILE, data, result.run_dir)
