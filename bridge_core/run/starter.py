"""``cosmos-bridge init``: a commented starter spec for a dataset, checked to validate."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bridge_core.controls.build import check_clip_inputs
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import (
    DEPTH,
    INSTANCE,
    NORMALS,
    RGB,
    SEMANTIC,
    Dataset,
    control_modality,
)
from bridge_core.errors import InputError
from bridge_core.outputs import atomic_path
from bridge_core.spec.load import load_job_spec
from bridge_core.spec.models import ControlSpec, QualitySpec

# What each control can be built from; a dataset's own control pictures also do.
_CONTROL_SOURCES = {
    "edge": {RGB, DEPTH, SEMANTIC, INSTANCE, NORMALS},
    "depth": {DEPTH},
    "seg": {SEMANTIC, INSTANCE},
    "blur": {RGB},
}
# Starting weights: geometry steers most, appearance least (sums above 1 are normalised).
_WEIGHTS = {"edge": 0.5, "depth": 0.5, "seg": 0.3, "blur": 0.2}
_PRESETS = {"edge": "medium", "blur": "medium"}
# Segmentation pictures read per camera to list the classes: enough to find them all
# in a steady scene without reading a 10,000-frame dataset.
_CLASS_SAMPLE_FRAMES = 16
_NOT_CLASSES = {"BACKGROUND", "UNLABELLED", "UNLABELED"}
EXAMPLE_VARIATIONS = (
    (
        "sunny",
        "The same scene, photorealistic, in warm afternoon sunlight with natural shadows, "
        "realistic materials and textures, sharp details.",
        1,
    ),
    (
        "overcast_dusk",
        "The same scene, photorealistic, at dusk under an overcast sky with soft diffuse light, "
        "realistic materials and textures, slightly wet surfaces.",
        2,
    ),
)


def _quality_defaults() -> list[str]:
    """The gate's thresholds at their defaults, as commented lines a user uncomments."""
    fields = QualitySpec.model_fields
    return [
        f"  # {name}: {json.dumps(fields[name].default)}"
        for name in fields
        if name.startswith(("min_", "max_"))
    ]


def default_controls(data: Dataset) -> dict[str, ControlSpec]:
    """Every control this dataset can give, at the default settings."""
    have = data.modalities
    return {
        name: ControlSpec()
        for name, needs in _CONTROL_SOURCES.items()
        if needs & have or control_modality(name) in have
    }


def _class_shares(data: Dataset) -> dict[str, float]:
    """Semantic class -> pixel share over evenly sampled frames, largest first."""
    pixels: Counter[str] = Counter()
    for camera in data.cameras.values():
        frames = [f for f in camera.frames if f.has(SEMANTIC)]
        step = max(len(frames) // _CLASS_SAMPLE_FRAMES, 1)
        for frame in frames[::step][:_CLASS_SAMPLE_FRAMES]:
            seg = frame.semantic
            for segment_id, count in enumerate(np.bincount(seg.ids.ravel())):
                if count:
                    for label in seg.labels.get(segment_id, "?").split(","):
                        pixels[label.strip()] += int(count)
            frame.release()
    total = sum(pixels.values())
    return {label: count / total for label, count in pixels.most_common()} if total else {}


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML); line breaks YAML knows
    beyond JSON's (U+0085, U+2028) are escaped too, so the value reads back the same."""
    return json.dumps(text, ensure_ascii=not text.isprintable())


def _c(text: str) -> str:
    """``text`` for a YAML comment: quoted and escaped where it holds a line break or
    another control character, which would end the comment and inject keys."""
    return text if text.isprintable() else json.dumps(text)


Variation = tuple[str, str, int]  # name, prompt, seed


def starter_spec(
    dataset_path: Path,
    spec_path: Path,
    num_steps: int = 35,
    run_name: str = "first_run",
    variations: Sequence[Variation] = EXAMPLE_VARIATIONS,
    revision: str | None = None,
    guidance: float = 3.0,
    guide_controls: bool = False,
) -> str:
    """The YAML text of a starter spec for the dataset at ``dataset_path``, to be saved at
    ``spec_path`` (the dataset path is written relative to it); ``revision``, ``guidance``
    and ``guide_controls`` pick the default model's weights and its guidance (a student's
    is 0)."""
    data = open_dataset(dataset_path)
    controls = default_controls(data)
    if not controls:
        raise InputError("has nothing to build a control from", dataset_path)
    for clip in data.clips():  # a spec that run would refuse for its data is not written
        check_clip_inputs(clip, controls)
    cameras = list(data.cameras.values())
    first = min(c.frames[0].index for c in cameras)
    stop = max(c.frames[-1].index for c in cameras) + 1
    try:
        dataset_text = os.path.relpath(dataset_path.resolve(), spec_path.resolve().parent)
    except ValueError:  # another drive on Windows
        dataset_text = str(dataset_path.resolve())
    shares = _class_shares(data)
    classes = [c for c in shares if c not in _NOT_CLASSES]

    lines = [
        f"# cosmos-bridge job spec for {_c(dataset_path.resolve().name)} ({data.layout}),",
        "# written by `cosmos-bridge init`. Check it with `cosmos-bridge validate SPEC`, run it",
        "# with `cosmos-bridge run SPEC`. Outputs go inside the dataset folder, to",
        "# cosmos_transfer/<run_name>/<variation>/, each a BasicWriter dataset beside the labels.",
        "version: 1",
        "input:",
        f"  dataset: {_q(dataset_text)}  # relative to this file",
        "  # Cameras (render products): "
        + ", ".join(
            f"{_c(c.name)} ({len(c.frames)} frames, {c.resolution[0]}x{c.resolution[1]})"
            for c in cameras
        ),
        f"  cameras: [{', '.join(_q(c.name) for c in cameras)}]",
        f'  frames: "{first}:{stop}"  # START:STOP, stop excluded',
        "  # clip_length: 93  # frames per clip; unset: the model's chunk length",
        "controls:",
    ]
    if classes:
        listed = ", ".join(f"{_c(c)} {shares[c]:.1%}" for c in classes[:20])
        lines += [
            f"  # Semantic classes (pixel share of sampled frames): {listed}",
            "  # A rule steers a control harder on some classes, e.g. under edge:",
            f"  #   rules: [{{classes: [{', '.join(_q(c) for c in classes[:2])}], value: 1.0}}]",
        ]
    else:
        lines.append("  # No semantic classes found (rules by class need semantic segmentation).")
    lines.append("  # weight: how strongly each control steers; sums above 1 are normalised.")
    for name in controls:
        preset = f", preset: {_PRESETS[name]}" if name in _PRESETS else ""
        lines.append(f"  {name}: {{weight: {_WEIGHTS[name]}{preset}}}")
    lines.append("variations:  # one output folder per prompt x seed")
    for name, prompt, seed in variations:
        lines += [f"  - name: {name}", f"    prompt: {_q(prompt)}", f"    seed: {seed}"]
    lines += [
        "model:",
        "  # 'default' (the small CPU model in the package, 128x128), 'tiny' (random: noise),",
        "  # a hub id such as nvidia/Cosmos-Transfer2.5-2B, or a model folder",
        "  id: default",
        f"  revision: {revision}"
        if revision
        else "  # revision: default-v3.2-4step  # 4-step student: num_steps 4, 2 or 1, guidance 0",
        f"  num_steps: {num_steps}",
        f"  guidance: {guidance}",
        "  guide_controls: true"
        if guide_controls
        else "  # guide_controls: true  # guidance amplifies the controls too (docs: model card)",
        "output:",
        f"  run_name: {run_name}",
        "quality:  # every clip is judged; one failing a check is generated again with a new",
        "  # seed, then kept under <run>/rejected/ instead of its variation's folder",
        "  enabled: false  # true: judge every clip (docs/quality.md)",
        "  retries: 1",
        "  # thresholds at their defaults (null: not checked):",
        *_quality_defaults(),
    ]
    return "\n".join(lines) + "\n"


def write_starter_spec(
    dataset_path: Path,
    spec_path: Path,
    overwrite: bool = False,
    num_steps: int = 35,
    run_name: str = "first_run",
    variations: Sequence[Variation] = EXAMPLE_VARIATIONS,
    revision: str | None = None,
    guidance: float = 3.0,
    guide_controls: bool = False,
) -> Path:
    """Write :func:`starter_spec` to ``spec_path`` once it validates; the path written."""
    if spec_path.exists() and not overwrite:
        raise InputError("exists already (pass --force to replace it)", spec_path)
    text = starter_spec(
        dataset_path,
        spec_path,
        num_steps,
        run_name,
        variations,
        revision,
        guidance,
        guide_controls,
    )
    with atomic_path(spec_path, spec_path.parent) as tmp:
        tmp.write_text(text, encoding="utf-8")
        # The temporary file sits beside the target, so its relative paths resolve the same.
        load_job_spec(tmp)
    return spec_path
