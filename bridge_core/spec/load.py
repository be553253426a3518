"""Reading, validating, dumping and describing job specs.

One entry point, :func:`load_job_specs`, reads this project's own specs (YAML or
JSON) and Cosmos-Transfer1 / Cosmos-Transfer2.5 spec files (JSON or JSONL, told
apart by their keys), and returns validated :class:`JobSpec` objects with notes on
what an import converted or dropped. Every failure is a :class:`SpecError` naming
the file, the field and, in JSONL, the line.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bridge_core.datasets.files import read_text
from bridge_core.errors import SpecError, UnsupportedFeatureError
from bridge_core.spec._origin import SpecOrigin
from bridge_core.spec.cosmos import (
    SourceFormat,
    convert_transfer1,
    convert_transfer25,
    detect_format,
)
from bridge_core.spec.models import (
    RULE_TAG_NAMES,
    SPEC_MODELS,
    FieldProblem,
    JobSpec,
    UnsupportedProblem,
)

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
JSONL_SUFFIXES = (".jsonl",)
# Far above any real spec (a JSONL of thousands of jobs is a few MB); /dev/zero is refused.
SPEC_LIMIT = 16 * 2**20

_FIELD_NAMES = sorted({name for model in SPEC_MODELS for name in model.model_fields})
_FORMAT_NAMES = {"cosmos-transfer1": "Cosmos-Transfer1", "cosmos-transfer2.5": "Cosmos-Transfer2.5"}


@dataclass
class LoadedSpec:
    """A validated spec and what loading it involved."""

    spec: JobSpec
    source_format: SourceFormat
    origin: str
    """Where it came from, e.g. ``"multicontrol.jsonl line 2"``."""
    notes: list[str] = field(default_factory=list)
    """What an import converted or deliberately ignored, and why."""
    missing_files: list[Path] = field(default_factory=list)
    """Files and folders the spec references that do not exist (yet)."""


# ---------------------------------------------------------------------------
# Parsing text. YAML 1.1 reads "10:20" as the base-60 integer 620, which would
# turn a frame range into a number; this loader reads it as the string it looks
# like, and refuses duplicate keys, which YAML and JSON otherwise let the last win.


class _SpecYamlLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SEXAGESIMAL_FREE = {
    "tag:yaml.org,2002:int": re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    "tag:yaml.org,2002:float": re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
}
_SpecYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, _SEXAGESIMAL_FREE.get(tag, regexp)) for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# The parsers recurse once per level; no spec nests more than a few levels.
_TOO_DEEP = "nested too deeply"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_json(text: str, origin: SpecOrigin) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        # In JSONL the origin already names the line.
        where = f"column {exc.colno}" if origin.line else f"line {exc.lineno} column {exc.colno}"
        raise origin.error(f"not valid JSON ({where}): {exc.msg}") from None
    except ValueError as exc:
        raise origin.error(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise origin.error(f"not valid JSON: {_TOO_DEEP}") from None


def _parse_yaml(text: str, origin: SpecOrigin) -> Any:
    try:
        # A SafeLoader subclass: builds no arbitrary Python objects.
        return yaml.load(text, Loader=_SpecYamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1} column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise origin.error(f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise origin.error(f"not valid YAML: {_TOO_DEEP}") from None


def _documents(path: Path, text: str) -> list[tuple[SpecOrigin, Any]]:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        docs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                origin = SpecOrigin(path, number)
                docs.append((origin, _parse_json(line, origin)))
        if not docs:
            raise SpecError("no specs: every line is empty", path=path)
        return docs
    origin = SpecOrigin(path)
    if suffix in JSON_SUFFIXES:
        return [(origin, _parse_json(text, origin))]
    if suffix in YAML_SUFFIXES:
        return [(origin, _parse_yaml(text, origin))]
    known = ", ".join(YAML_SUFFIXES + JSON_SUFFIXES + JSONL_SUFFIXES)
    raise SpecError(f"not a spec file: expected one of {known}", path=path)


# ---------------------------------------------------------------------------
# Validation errors, as one line a user can act on.


def _describe_error(error: Any) -> tuple[str | None, str]:
    # Union tags (ClassRule, ...) and "[key]" are pydantic's bookkeeping, not spec fields.
    loc = [str(part) for part in error["loc"] if part not in RULE_TAG_NAMES and part != "[key]"]
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        loc.append(problem.subfield)
    field_name = ".".join(loc) or None
    if error["type"] == "extra_forbidden":
        message = "unknown field"
        close = difflib.get_close_matches(loc[-1], _FIELD_NAMES, n=1, cutoff=0.75)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    elif error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
    return field_name, message


def _spec_error(exc: ValidationError, origin: SpecOrigin, converted_from: str | None) -> SpecError:
    errors = exc.errors()
    unsupported = any(isinstance(e.get("ctx", {}).get("error"), UnsupportedProblem) for e in errors)
    described = [_describe_error(e) for e in errors]
    field_name, message = described[0]
    if len(described) > 1:
        rest = "; ".join(f"{f}: {m}" if f else m for f, m in described[1:])
        message += f" (also: {rest})"
    if converted_from is not None:
        message += f" [after conversion from {converted_from}]"
    kind = UnsupportedFeatureError if unsupported else SpecError
    return origin.error(message, field=field_name, kind=kind)


def _validate(
    data: Any, origin: SpecOrigin, base_dir: Path | None, converted_from: str | None = None
) -> JobSpec:
    try:
        return JobSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _spec_error(exc, origin, converted_from) from None


# ---------------------------------------------------------------------------
# Public API.


def parse_job_spec(data: Mapping[str, Any], base_dir: Path | str | None = None) -> JobSpec:
    """This project's spec given as data (the panel, tests), validated.

    Relative paths are joined to ``base_dir`` when given.
    """
    base = Path(base_dir) if base_dir is not None else None
    return _validate(dict(data), SpecOrigin(None), base)


def _missing(spec: JobSpec) -> list[Path]:
    return list(dict.fromkeys(p for p in spec.referenced_paths() if not p.exists()))


def _load_document(origin: SpecOrigin, data: Any) -> LoadedSpec:
    fmt = detect_format(data)
    if fmt is None:
        raise origin.error(
            "not a job spec: expected 'input', 'controls' and 'variations' (a cosmos-bridge "
            "spec) or a prompt, input video and controls (a Cosmos-Transfer spec)"
        )
    notes: list[str] = []
    if fmt == "bridge":
        spec = _validate(data, origin, origin.folder)
    else:
        convert = convert_transfer1 if fmt == "cosmos-transfer1" else convert_transfer25
        converted = convert(data, origin)
        notes = converted.notes
        spec = _validate(converted.data, origin, origin.folder, _FORMAT_NAMES[fmt])
    return LoadedSpec(spec, fmt, origin.describe(), notes, _missing(spec))


def load_job_specs(path: Path | str) -> list[LoadedSpec]:
    """Every spec in a file: one for YAML/JSON, one per non-empty line for JSONL.

    Own specs and Cosmos-Transfer1/2.5 specs are told apart by content. Raises
    SpecError (UnsupportedFeatureError for features this project lacks) naming
    the file, the field and the line; nothing is returned unless every spec is valid.
    """
    path = Path(path)
    text = read_text(path, SPEC_LIMIT, SpecError)
    # Absolute, so paths inside resolve the same whatever the working folder is later.
    path = Path(os.path.abspath(path))
    loaded = [_load_document(origin, data) for origin, data in _documents(path, text)]
    _check_unique_runs(loaded, path)
    return loaded


def _check_unique_runs(loaded: list[LoadedSpec], path: Path) -> None:
    # Specs of one file run side by side; a shared run name would mix their outputs.
    seen: dict[str, str] = {}
    for item in loaded:
        name = item.spec.output.run_name
        if name.casefold() in seen:
            raise SpecError(
                f"{item.origin} uses run name {name!r} again (first in {seen[name.casefold()]})",
                path=path,
                field="output.run_name",
            )
        seen[name.casefold()] = item.origin


def load_job_spec(path: Path | str) -> LoadedSpec:
    """The one spec in a file; a SpecError if it holds several (a JSONL with more lines)."""
    loaded = load_job_specs(path)
    if len(loaded) != 1:
        raise SpecError(f"holds {len(loaded)} specs where one was expected", path=Path(path))
    return loaded[0]


def _plain(value: Any) -> Any:
    # YAML-safe builtins: paths as text, tuples as lists, keyframe keys kept as ints.
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dump_job_spec(spec: JobSpec) -> str:
    """The spec as normalised YAML: canonical names, resolved paths, unset options left out."""
    data = _plain(spec.model_dump(mode="python", exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def job_spec_schema() -> dict[str, Any]:
    """The JSON schema of a job spec (for editors and ``cosmos-bridge validate --schema``)."""
    return JobSpec.model_json_schema()
