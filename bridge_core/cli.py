"""The ``cosmos-bridge`` command: one thin command per verb over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    Progress,
    ProgressColumn,
    Task,
)
from rich.table import Table
from rich.text import Text

from bridge_core.capture.command import capture
from bridge_core.controls.build import build_control_stack, check_clip_inputs
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.summary import summarize
from bridge_core.errors import BridgeError, InputError, describe_os_error
from bridge_core.memory import reuse_freed_memory
from bridge_core.outputs import staged_folder
from bridge_core.report.controls_export import export_clip
from bridge_core.report.run_report import acceptance_table, metrics_table, worst_clips_table
from bridge_core.run.starter import default_controls, write_starter_spec
from bridge_core.spec.load import dump_job_spec, job_spec_schema, load_job_specs
from bridge_core.spec.models import parse_frames
from bridge_core.terminal import console, errors, progress_bar
from bridge_core.train.command import train_default
from bridge_core.train.distill import distill

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Photoreal training data from Isaac Sim: Replicator datasets -> Cosmos-Transfer controls.",
)

# Frames per clip when neither the spec nor the command line says: the reference
# model's chunk, so the controls are normalised over what the model sees at once.
DEFAULT_CLIP_LENGTH = 93


app.command()(capture)
app.command()(train_default)
app.command()(distill)


@app.command()
def inspect(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder or control video.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Layout, cameras, frames, resolution, modalities and semantic classes of a dataset."""
    data = open_dataset(dataset)
    for clip in data.clips():  # one per run of frames: a missing or broken file is named
        clip.check(clip.modalities)
    total = sum(len(c.frames) for c in data.cameras.values())
    with progress_bar() as progress:
        task = progress.add_task("reading labels", total=total)
        summary = summarize(data, on_frame=lambda: progress.advance(task))
    if as_json:
        from dataclasses import asdict

        console.print_json(json.dumps(asdict(summary)))
        return
    console.print(f"[bold]{summary.root}[/]  layout: [cyan]{summary.layout}[/]")
    table = Table("camera", "frames", "range", "resolution", "modalities", "label files")
    for cam in summary.cameras:
        table.add_row(
            cam.name,
            str(cam.num_frames),
            f"{cam.first_frame}-{cam.last_frame}",
            f"{cam.resolution[0]}x{cam.resolution[1]}",
            ", ".join(cam.modalities),
            ", ".join(cam.label_annotators) or "-",
        )
    console.print(table)
    if summary.class_shares:
        classes = Table("semantic class", "pixel share")
        for label, share in summary.class_shares.items():
            classes.add_row(label, f"{share:.1%}")
        console.print(classes)
    else:
        console.print("no semantic labels")


@app.command()
def controls(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder or control video.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created).")],
    spec: Annotated[
        Path | None, typer.Option(help="Job spec whose controls, cameras and frames to use.")
    ] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Camera(s) to use; default all.")] = None,
    frames: Annotated[str | None, typer.Option(help="Frame range START:STOP.")] = None,
    clip_length: Annotated[int | None, typer.Option(help="Frames per clip.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Write each control and weight map per clip, plus a contact sheet per clip."""
    data = open_dataset(dataset)
    control_specs = default_controls(data)
    cameras, frame_range, length = camera, None, clip_length
    if spec is not None:
        job = _single_spec(spec)
        control_specs = job.controls
        cameras = cameras or job.input.cameras
        frame_range = job.input.frames
        length = length or job.input.clip_length
    if frames is not None:
        frame_range = _parse_frames_option(frames)
    if frame_range is not None and frame_range[1] is None:
        frame_range = (frame_range[0], sys.maxsize)
    clips = data.clips(cameras, length or DEFAULT_CLIP_LENGTH, frame_range)
    for clip in clips:  # a bad frame anywhere is refused before the folder is made
        check_clip_inputs(clip, control_specs)
    with staged_folder(out, overwrite, [dataset]) as staging, progress_bar() as progress:
        task = progress.add_task("building controls", total=sum(len(c) for c in clips))
        for clip in clips:
            stack = build_control_stack(clip, control_specs)
            export_clip(staging, clip, stack)
            clip.release()
            progress.advance(task, len(clip))
    console.print(
        f"wrote {', '.join(control_specs)} for {len(clips)} clip(s) "
        f"({sum(len(c) for c in clips)} frames) to [bold]{out}[/]"
    )


def _single_spec(path: Path):
    loaded = load_job_specs(path)
    if len(loaded) != 1:
        raise InputError(f"holds {len(loaded)} jobs; give a spec with one", path)
    return loaded[0].spec


@app.command()
def validate(
    spec: Annotated[
        Path | None, typer.Argument(help="Job spec (YAML/JSON) or Cosmos-Transfer spec.")
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the job spec's JSON schema.")
    ] = False,
) -> None:
    """Check a spec (ours, or a Cosmos-Transfer1/2.5 one) and print it normalised."""
    if schema:
        console.print_json(json.dumps(job_spec_schema()))
        return
    if spec is None:
        raise InputError("give a spec file, or --schema")
    from bridge_core.run.loop import check_job

    for loaded in load_job_specs(spec):
        if loaded.spec.input.dataset.exists():
            check_job(loaded.spec)  # what run would refuse about the dataset, too
        console.print(f"[green]valid[/] {loaded.origin} ({loaded.source_format})")
        for note in loaded.notes:
            console.print(f"  note: {note}")
        for missing in loaded.missing_files:
            console.print(f"  [yellow]warning[/]: {missing} does not exist (yet)")
        console.print(dump_job_spec(loaded.spec), markup=False, highlight=False)


def _parse_frames_option(frames: str | None) -> tuple[int, int | None] | None:
    try:
        return parse_frames(frames)
    except ValueError as exc:
        raise InputError(str(exc), field="--frames") from exc


@app.command()
def init(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder or control video.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Spec file to write (default: <dataset name>.yaml)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing spec file.")] = False,
) -> None:
    """Write a commented starter job spec for a dataset: its cameras, frames and classes."""
    spec_path = out or Path(f"{dataset.resolve().stem}.yaml")
    write_starter_spec(dataset, spec_path, overwrite=force)
    console.print(f"wrote [bold]{escape(str(spec_path))}[/]; edit the prompts, then:")
    console.print(f"  cosmos-bridge run {spec_path}", markup=False, highlight=False)


class _RateColumn(ProgressColumn):
    """Frames per second, or seconds per frame when slower than one a second."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        if not speed:
            return Text("-- frame/s")
        return Text(f"{speed:.2f} frame/s" if speed >= 1 else f"{1 / speed:.1f} s/frame")


class _RunBar:
    """The run loop's progress, drawn by rich: frames done, rate, time left."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("generating", total=total, completed=done)

    def advance(self, frames: int) -> None:
        self.progress.advance(self.task, frames)

    def workers(self, alive: int, started: int) -> None:
        """On Ray: how many of the workers answer."""
        self.progress.update(self.task, description=f"generating ({alive}/{started} workers)")


def _print_notes(notes: list[str], where: Console) -> None:
    for note in notes:
        where.print(f"[bold yellow]NOTE[/]: {escape(note)}")


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Job spec (YAML/JSON) or Cosmos-Transfer spec.")],
    model: Annotated[
        str | None, typer.Option(help="Model id: default, tiny, a hub id or a folder.")
    ] = None,
    frames: Annotated[str | None, typer.Option(help="Frame range START:STOP.")] = None,
    force: Annotated[bool, typer.Option(help="Redo frames already done.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Run on Ray: auto (this machine's cluster, else a new local one), local, "
            "or a cluster's address. Overrides the spec's ray.address."
        ),
    ] = None,
    ray_workers: Annotated[
        int | None, typer.Option(min=1, help="Ray workers (default: one per GPU).")
    ] = None,
) -> None:
    """Generate every variation of every selected frame, written back beside the labels."""
    from bridge_core.run.loop import check_job, run_job
    from bridge_core.run.models import resolve_model
    from bridge_core.spec.models import RaySpec

    job = _single_spec(spec)
    frame_range = _parse_frames_option(frames)
    check_job(job, frame_range)  # before the model loads: bad input fails in a second
    ray_spec = job.ray
    if ray is not None or ray_workers is not None:
        ray_spec = (ray_spec or RaySpec()).model_copy(
            update={k: v for k, v in {"address": ray, "workers": ray_workers}.items() if v}
        )
    progress = progress_bar(_RateColumn(), transient=False)
    bar = _RunBar(progress)
    try:
        if ray_spec is not None:
            from bridge_core.run.distributed import run_job_on_ray

            with progress:
                result = run_job_on_ray(
                    job,
                    None,
                    frame_range,
                    force,
                    bar,
                    ray_spec=ray_spec,
                    model_id=model,
                    checked=True,
                    on_model=lambda resolved: _print_notes(resolved.notes, progress.console),
                )
        else:
            resolved = resolve_model(job.model, model)
            _print_notes(resolved.notes, console)
            with progress:
                result = run_job(job, resolved, frame_range, force, bar, checked=True)
    except KeyboardInterrupt:
        errors.print(
            "interrupted: every frame written so far is complete and in the manifest; "
            "run the same command again to resume"
        )
        sys.exit(130)
    metrics = result.metrics
    if metrics.get("clips"):
        console.print(metrics_table(metrics["clips"], metrics["mean"]))
        console.print(acceptance_table(metrics["acceptance"]))
    rejected = f", {result.rejected} rejected (under rejected/)" if result.rejected else ""
    per_frame = f", {result.seconds / result.generated:.2f} s/frame" if result.generated else ""
    console.print(
        f"{result.generated} frame(s) generated{rejected}, {result.skipped} already done "
        f"({result.seconds:.1f} s{per_frame}); label files as {result.label_mode}s"
    )
    console.print(f"outputs: {result.run_dir}", markup=False, highlight=False)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (it holds run.json).")],
    limit: Annotated[int, typer.Option(min=1, help="Clips to list.")] = 20,
) -> None:
    """A run's quality: acceptance per variation, then its clips worst first."""
    from bridge_core.datasets.files import read_json
    from bridge_core.run.layout import RUN_FILE

    path = run_dir / RUN_FILE
    if not path.is_file():
        raise InputError(
            f"has no {RUN_FILE}: give a run folder (<dataset>/cosmos_transfer/<run>)", run_dir
        )
    metrics = read_json(path).get("metrics", {})
    clips = metrics.get("clips") or []
    if not clips:
        console.print("no clip of this run has a report yet")
        return
    if "acceptance" in metrics:
        console.print(acceptance_table(metrics["acceptance"]))
    console.print(worst_clips_table(clips, limit))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder to write the demo into.")] = Path(
        "bridge-demo"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty workdir.")] = False,
    steps: Annotated[
        int,
        typer.Option(
            help="Sampling steps: 12 with guidance, or 4, 2 or 1 to run the distilled student.",
            min=1,
        ),
    ] = 12,
) -> None:
    """Run the whole path on the bundled sample dataset with the default model."""
    from bridge_core.demo import run_demo

    run_demo(workdir, console, overwrite, steps)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, no traceback."""
    reuse_freed_memory()  # this process is ours (see bridge_core/memory.py)
    try:
        app(standalone_mode=False)
    except BridgeError as exc:
        errors.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        errors.print(Text.assemble(("error: ", "red"), describe_os_error(exc)), soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        errors.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
