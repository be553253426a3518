"""The job spec of a live capture, from the writer's parameters (the job spec's own fields)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge_core.errors import SpecError
from bridge_core.spec.load import load_job_spec, parse_job_spec
from bridge_core.spec.models import JobSpec

# Writer parameters that replace the spec section of the same name.
SPEC_SECTIONS = ("controls", "variations", "model", "output")
# Writer parameters that go into the spec's input section.
INPUT_FIELDS = ("cameras", "clip_length")


def live_spec(
    output_dir: str | Path | None = None,
    spec: JobSpec | Mapping[str, Any] | str | Path | None = None,
    **fields: Any,
) -> JobSpec:
    """``spec`` (a JobSpec, its dict form, or a spec file) with ``fields`` on top, reading
    from ``output_dir``: where the capture writes its ground truth and the run its outputs.

    fields: controls, variations, model, output (whole sections, dicts or models);
    cameras, clip_length (input fields). input.frames is cleared: a live capture
    generates every frame it captures. Raises SpecError naming the bad field.
    """
    unknown = sorted(set(fields) - set(SPEC_SECTIONS) - set(INPUT_FIELDS))
    if unknown:
        known = ", ".join((*SPEC_SECTIONS, *INPUT_FIELDS))
        raise SpecError(f"unknown writer parameter(s) {', '.join(unknown)} (known: {known})")
    if isinstance(spec, (str, Path)):
        spec = load_job_spec(spec).spec
    if isinstance(spec, JobSpec):
        data: dict[str, Any] = spec.model_dump(mode="json")
    else:
        data = dict(spec or {})
    inputs = dict(data.get("input") or {})
    if output_dir is None:
        output_dir = inputs.get("dataset")
    if output_dir is None:
        raise SpecError("give the folder to write the capture to", field="output_dir")
    for name in SPEC_SECTIONS:
        if fields.get(name) is not None:
            value = fields[name]
            data[name] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    inputs.update({name: fields[name] for name in INPUT_FIELDS if fields.get(name) is not None})
    inputs["dataset"] = str(Path(output_dir).expanduser().resolve())
    inputs["frames"] = None
    data["input"] = inputs
    return parse_job_spec(data)
