"""Cosmos-Transfer1 and Cosmos-Transfer2.5 spec files, converted to job-spec data.

Users bring jobs they already wrote for the reference inference scripts. Each
converter returns plain data in this project's own layout (validated afterwards
like any spec) plus notes saying what was converted and what was deliberately
dropped, and why. Keys known to the formats but not to this converter are errors,
and features this project does not implement raise UnsupportedFeatureError naming
them, so nothing is silently lost.

Key sets follow cosmos-transfer1 (``transfer.py`` arguments and
``validate_controlnet_specs``) and cosmos-transfer2.5 (``config.py``:
``InferenceArguments``, ``ControlConfig``, ``CommonSetupArguments``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bridge_core.errors import UnsupportedFeatureError
from bridge_core.spec._origin import SpecOrigin
from bridge_core.spec.models import (
    CONTROL_ALIASES,
    UNSUPPORTED_CONTROLS,
    check_folder_name,
    resolve_path,
)

SourceFormat = Literal["bridge", "cosmos-transfer1", "cosmos-transfer2.5"]

# "model" is left out: Transfer2.5 has a "model" key too (a string, ours is a mapping).
BRIDGE_KEYS = frozenset({"version", "input", "controls", "variations", "output"})
COSMOS_CONTROLS = ("edge", "depth", "seg", "vis")

# Features that need GroundingDINO + SAM2 at run time; the dataset's labels do the same job.
_TEXT_PROMPTED = "text-prompted masks"
_ADVICE = {
    _TEXT_PROMPTED: (
        "they need GroundingDINO + SAM2; the dataset's labels do this: weight by class "
        "with a rule such as {classes: ['robot*'], value: 1.0}"
    ),
}

# Keys whose values this project has no use for, with the reason given to the user.
_T1_IGNORED: dict[str, str] = {
    "checkpoint_dir": "the model comes from model.id",
    "tokenizer_dir": "the model comes from model.id",
    "is_av_sample": "the AV post-trained checkpoint is not used; the model comes from model.id",
    "use_distilled": "pick a distilled model through model.id",
    "video_save_name": "outputs are laid out by the run under output.run_name",
    "video_save_folder": "outputs are laid out by the run under output.run_name",
    "batch_size": "variations and clips run one after another",
    "num_gpus": "a run uses one GPU",
    "offload_diffusion_transformer": "GPU memory is governed by model.memory",
    "offload_text_encoder_model": "the prompt-embedding cache keeps the text encoder off the GPU",
    "offload_guardrail_models": "guardrail placement is the model's business",
    "offload_prompt_upsampler": "there is no prompt upsampler",
    "upsample_prompt": "prompts are used as written (no Pixtral prompt upsampler)",
    "fps": "outputs keep the dataset's frame rate",
    "cutoff_frame": "it only applies to the AV model",
    "save_intermediates": "intermediate denoising videos are not saved",
    "num_video_frames": "the length follows the input; set input.frames to shorten it",
}
_T25_IGNORED: dict[str, str] = {
    "resolution": "the output keeps the dataset's resolution",
    "keep_input_resolution": "the output keeps the dataset's resolution",
    "show_control_condition": "controls and maps are written beside the outputs anyway",
    "show_input": "the run report shows inputs beside outputs",
    "output_dir": "outputs are laid out by the run under output.run_name",
    "model": "the model comes from model.id (one model holds every control branch)",
    "checkpoint_path": "the model comes from model.id",
    "experiment": "the model comes from model.id",
    "config_file": "the model comes from model.id",
    "context_parallel_size": "a run uses one GPU",
    "disable_guardrails": "the guardrail follows the model's license, not the spec",
    "offload_guardrail_models": "guardrail placement is the model's business",
    "keep_going": "a run stops on the first error and resumes where it stopped",
    "profile": "profiling is not part of a spec",
    "benchmark": "benchmarking is not part of a spec",
    "compile_tokenizer": "the VAE is not compiled",
    "enable_parallel_tokenizer": "a run uses one GPU",
    "parallel_tokenizer_grid": "a run uses one GPU",
}
_T1_UNSUPPORTED_TOP: dict[str, str] = {
    "regional_prompts": "regional prompts (a separate prompt per region)",
    "batch_input_path": "a batch prompt file (write one variation per prompt instead)",
}
_T25_UNSUPPORTED_TOP: dict[str, str] = {
    "context_frame_index": "image context (a frame used as style reference)",
    "image_context_path": "image context (a style reference image)",
}
_T1_MAPPED = {
    "prompt",
    "negative_prompt",
    "input_video_path",
    "seed",
    "guidance",
    "num_steps",
    "sigma_max",
    "num_input_frames",
    "canny_threshold",
    "blur_strength",
}
_T25_MAPPED = {
    "name",
    "prompt",
    "prompt_path",
    "negative_prompt",
    "video_path",
    "seed",
    "guidance",
    "num_steps",
    "sigma_max",
    "num_video_frames_per_chunk",
    "num_conditional_frames",
    "max_frames",
    "control_weight",
}
_T1_CONTROL_KEYS = {
    "input_control",
    "control_weight",
    "sigma_max",
    "ckpt_path",
    "control_weight_prompt",
    "input_control_prompt",
}
_T25_CONTROL_KEYS = {
    "control_path",
    "control_weight",
    "mask_path",
    "mask_prompt",
    "preset_edge_threshold",
    "preset_blur_strength",
    "control_prompt",
}
_T25_PRESET_KEYS = {"preset_edge_threshold": "edge", "preset_blur_strength": "vis"}
# Keys only one of the two formats has: they tell the formats apart.
_T1_MARKERS = {"input_video_path", "num_input_frames", "canny_threshold", "blur_strength"}
_T25_MARKERS = {"video_path", "prompt_path", "name", "num_video_frames_per_chunk", "max_frames"}
_T25_CONTROL_MARKERS = {"control_path", "mask_path", "mask_prompt", "control_prompt"}
_COSMOS_HINTS = {"prompt", "input_video_path", "video_path", "prompt_path"}

# Defaults of the reference scripts where they differ from this project's.
_T1_DEFAULT_GUIDANCE = 5.0
_T1_DEFAULT_SEED = 1
_T1_DEFAULT_CONTROL_WEIGHT = 0.5
_T25_DEFAULT_SEED = 2025
_TENSOR_SUFFIXES = (".pt", ".pth", ".safetensors", ".npy")


@dataclass
class Converted:
    """Job-spec data converted from a Cosmos spec, and what the conversion did."""

    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def detect_format(data: Any) -> SourceFormat | None:
    """Which format a parsed spec document is in, or None when it is no spec at all."""
    if not isinstance(data, dict):
        return None
    keys = set(data)
    if keys & BRIDGE_KEYS or isinstance(data.get("model"), dict):
        return "bridge"
    control_keys = set(COSMOS_CONTROLS) | set(UNSUPPORTED_CONTROLS)
    controls = [value for key, value in data.items() if key in control_keys]
    if not (keys & (_COSMOS_HINTS | _T25_MARKERS | _T1_MARKERS) or controls):
        return None
    inner = set().union(*(c for c in controls if isinstance(c, dict)))
    if keys & _T25_MARKERS or inner & _T25_CONTROL_MARKERS:
        return "cosmos-transfer2.5"
    # Transfer1 is also the fallback: its files may hold nothing but controls.
    return "cosmos-transfer1"


def resolve_cosmos_path(text: str, folder: Path) -> Path:
    """A path from a Cosmos spec, resolved against ``folder`` or one of its parents.

    The reference scripts run from their repository root, so examples say
    "assets/x.mp4" from inside assets/. The first base where the file exists
    wins; failing that, the first where its folder exists (the file is merely
    missing); failing that, ``folder``.
    """
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    bases = (folder, *folder.parents)
    for exists in (Path.exists, lambda candidate: candidate.parent.is_dir()):
        for base in bases:
            candidate = resolve_path(path, base)
            if exists(candidate):
                return candidate
    return resolve_path(path, folder)


def default_name(origin: SpecOrigin) -> str:
    """A folder-safe run name from the spec file's name (and line, in JSONL)."""
    stem = origin.path.stem if origin.path is not None else "cosmos"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "cosmos"
    return f"{name}_{origin.line}" if origin.line is not None else name


def _unsupported(origin: SpecOrigin, found: dict[str, str]) -> UnsupportedFeatureError:
    """One error naming every unsupported feature (key -> feature) of a spec."""
    keys_by_feature: dict[str, list[str]] = {}
    for key, feature in found.items():
        keys_by_feature.setdefault(feature, []).append(key)
    parts = []
    for feature, keys in keys_by_feature.items():
        advice = f": {_ADVICE[feature]}" if feature in _ADVICE else ""
        parts.append(f"{feature} ({', '.join(keys)}){advice}")
    return origin.error(
        "not supported by cosmos-transfer-bridge: " + "; ".join(parts),
        field=next(iter(found)),
        kind=UnsupportedFeatureError,
    )


def _check_keys(
    data: dict[str, Any], known: set[str], origin: SpecOrigin, prefix: str, fmt: str
) -> None:
    unknown = sorted(set(data) - known)
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    raise origin.error(f"unknown {fmt} key {unknown[0]!r} ({hint})", field=prefix + unknown[0])


def _path(value: Any, origin: SpecOrigin, key: str) -> str:
    """A path value of a Cosmos spec, resolved as :func:`resolve_cosmos_path` does."""
    if not isinstance(value, str) or not value:
        raise origin.error(f"expected a path, got {value!r}", field=key)
    return str(resolve_cosmos_path(value, origin.folder or Path.cwd()))


def _number(value: Any, origin: SpecOrigin, key: str) -> float:
    # Cosmos accepts numbers written as strings ("0.5", sigma_max "70").
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise origin.error(f"expected a number, got {value!r}", field=key) from None


def _controls_of(data: dict[str, Any], origin: SpecOrigin) -> dict[str, dict[str, Any]]:
    controls = {}
    for key in COSMOS_CONTROLS:
        if key not in data:
            continue
        if not isinstance(data[key], dict):
            raise origin.error(f"expected an object of control settings, got {data[key]!r}", key)
        controls[key] = data[key]
    return controls


def _dataset_fallback(
    controls: dict[str, dict[str, Any]], origin: SpecOrigin, notes: list[str]
) -> str:
    # Without an input video the reference generates from the control videos
    # alone; the first of them then serves as the dataset (it sets length and size).
    for key, spec in controls.items():
        source = spec.get("source", "auto")
        if source != "auto":
            notes.append(f"no input video: the {key} control video is used as the input")
            return source
    raise origin.error("no input video and no control video to read", "input_video_path")


def _note_missing_controls(controls: dict[str, dict[str, Any]], notes: list[str]) -> None:
    # The reference runs a depth network / GroundingDINO+SAM2 on the input video;
    # this project builds these controls from the dataset's depth and labels instead.
    for key in ("depth", "seg"):
        if key in controls and controls[key].get("source", "auto") == "auto":
            notes.append(
                f"{key} has no control video: it is built from the dataset's "
                f"{'metric depth' if key == 'depth' else 'segmentation labels'}, which a plain "
                "video lacks; point input.dataset at a Replicator dataset or give a control video"
            )


def _t1_control(
    key: str, control: dict[str, Any], origin: SpecOrigin, notes: list[str]
) -> dict[str, Any]:
    """Our control settings from one Transfer1 control entry."""
    _check_keys(control, _T1_CONTROL_KEYS, origin, f"{key}.", "Cosmos-Transfer1 control")
    spec: dict[str, Any] = {}
    if "input_control" in control:
        spec["source"] = _path(control["input_control"], origin, f"{key}.input_control")
    weight = control.get("control_weight")
    if weight is None:
        spec["weight"] = _T1_DEFAULT_CONTROL_WEIGHT
        notes.append(f"{key}: no control_weight, Cosmos-Transfer1's default 0.5 used")
    elif isinstance(weight, str) and weight.lower().endswith(_TENSOR_SUFFIXES):
        # A [T,H,W] / [H,W] tensor is the weight map itself.
        mask = _path(weight, origin, f"{key}.control_weight")
        spec["rules"] = [{"mask": mask, "op": "set"}]
        notes.append(f"{key}: control_weight tensor {weight} became a mask rule")
    else:
        spec["weight"] = _number(weight, origin, f"{key}.control_weight")
    if "ckpt_path" in control:
        notes.append(f"ignored {key}.ckpt_path: one model holds every control branch")
    return spec


def convert_transfer1(data: dict[str, Any], origin: SpecOrigin) -> Converted:
    """Job-spec data from a Cosmos-Transfer1 ``--controlnet_specs`` JSON."""
    notes: list[str] = []

    # 1. unsupported features, all named at once
    found = {k: UNSUPPORTED_CONTROLS[k] for k in data if k in UNSUPPORTED_CONTROLS}
    found |= {k: _T1_UNSUPPORTED_TOP[k] for k in data if k in _T1_UNSUPPORTED_TOP}
    for key, control in _controls_of(data, origin).items():
        for prompt_key in ("control_weight_prompt", "input_control_prompt"):
            if prompt_key in control:
                found[f"{key}.{prompt_key}"] = _TEXT_PROMPTED
        if isinstance(control.get("input_control"), list):
            found[f"{key}.input_control"] = "multi-view input_control lists"
    if found:
        raise _unsupported(origin, found)

    # 2. every remaining key must be one we map or deliberately ignore
    known = _T1_MAPPED | set(_T1_IGNORED) | set(COSMOS_CONTROLS)
    _check_keys(data, known, origin, "", "Cosmos-Transfer1")
    notes += [f"ignored {k}: {_T1_IGNORED[k]}" for k in data if k in _T1_IGNORED]

    # 3. controls
    model: dict[str, Any] = {}
    controls: dict[str, dict[str, Any]] = {}
    for key, control in _controls_of(data, origin).items():
        controls[CONTROL_ALIASES.get(key, key)] = _t1_control(key, control, origin, notes)
        if "sigma_max" in control:
            model["sigma_max"] = _number(control["sigma_max"], origin, f"{key}.sigma_max")
            notes.append(f"{key}.sigma_max applies to the whole job (model.sigma_max)")
    for key, target in (("canny_threshold", "edge"), ("blur_strength", "blur")):
        if key not in data:
            continue
        if target in controls:
            controls[target]["preset"] = data[key]
        else:
            notes.append(f"ignored {key}: there is no {target} control")
    _note_missing_controls(controls, notes)

    # 4. input, prompt and sampling
    video = data.get("input_video_path") or ""
    if video:
        dataset = _path(video, origin, "input_video_path")
    else:
        dataset = _dataset_fallback(controls, origin, notes)
    if not data.get("prompt"):
        raise origin.error("no prompt: give the prompt the video should follow", "prompt")
    if "sigma_max" in data:
        model["sigma_max"] = _number(data["sigma_max"], origin, "sigma_max")
    if "guidance" in data:
        model["guidance"] = _number(data["guidance"], origin, "guidance")
    else:
        model["guidance"] = _T1_DEFAULT_GUIDANCE
        notes.append("no guidance: Cosmos-Transfer1's default 5.0 used")
    if "num_steps" in data:
        model["num_steps"] = data["num_steps"]
    if "num_input_frames" in data:
        model["num_conditional_frames"] = data["num_input_frames"]
    if "seed" not in data:
        notes.append("no seed: Cosmos-Transfer1's default 1 used")
    variation = {
        "name": default_name(origin),
        "prompt": data["prompt"],
        "seed": data.get("seed", _T1_DEFAULT_SEED),
    }
    if data.get("negative_prompt"):
        variation["negative_prompt"] = data["negative_prompt"]
    return Converted(
        data={
            "input": {"dataset": dataset},
            "controls": controls,
            "variations": [variation],
            "model": model,
            "output": {"run_name": default_name(origin)},
        },
        notes=notes,
    )


def _t25_control(
    key: str, control: dict[str, Any], default_weight: Any, origin: SpecOrigin, notes: list[str]
) -> dict[str, Any]:
    """Our control settings from one Transfer2.5 control entry."""
    _check_keys(control, _T25_CONTROL_KEYS, origin, f"{key}.", "Cosmos-Transfer2.5 control")
    weight = control.get("control_weight", default_weight)
    spec: dict[str, Any] = {"weight": _number(weight, origin, f"{key}.control_weight")}
    if "control_path" in control:
        spec["source"] = _path(control["control_path"], origin, f"{key}.control_path")
    if "control_prompt" in control:
        notes.append(f"ignored {key}.control_prompt: the control video is given")
    if "mask_path" in control:
        # The reference multiplies the control's weight by the binary mask.
        mask = _path(control["mask_path"], origin, f"{key}.mask_path")
        spec["rules"] = [{"mask": mask, "op": "multiply"}]
    for preset_key, owner in _T25_PRESET_KEYS.items():
        if preset_key not in control:
            continue
        if key != owner:
            message = f"{preset_key} belongs to the {owner} control"
            raise origin.error(message, f"{key}.{preset_key}")
        spec["preset"] = control[preset_key]
    return spec


def convert_transfer25(data: dict[str, Any], origin: SpecOrigin) -> Converted:
    """Job-spec data from one Cosmos-Transfer2.5 sample (a JSON file or one JSONL line)."""
    notes: list[str] = []
    controls_in = _controls_of(data, origin)

    # 1. unsupported features, all named at once
    found = {k: UNSUPPORTED_CONTROLS[k] for k in data if k in UNSUPPORTED_CONTROLS}
    found |= {k: _T25_UNSUPPORTED_TOP[k] for k in data if k in _T25_UNSUPPORTED_TOP}
    for key, control in controls_in.items():
        if "mask_prompt" in control:
            found[f"{key}.mask_prompt"] = _TEXT_PROMPTED
        if "control_prompt" in control and "control_path" not in control:
            found[f"{key}.control_prompt"] = _TEXT_PROMPTED
    if found:
        raise _unsupported(origin, found)

    # 2. every remaining key must be one we map or deliberately ignore
    known = _T25_MAPPED | set(_T25_IGNORED) | set(COSMOS_CONTROLS)
    _check_keys(data, known, origin, "", "Cosmos-Transfer2.5")
    notes += [f"ignored {k}: {_T25_IGNORED[k]}" for k in data if k in _T25_IGNORED]

    # 3. controls; a top-level control_weight is the default of every control
    default_weight = data.get("control_weight", 1.0)
    controls: dict[str, dict[str, Any]] = {}
    for key, control in controls_in.items():
        spec = _t25_control(key, control, default_weight, origin, notes)
        controls[CONTROL_ALIASES.get(key, key)] = spec
    _note_missing_controls(controls, notes)

    # 4. input, prompt and sampling
    if not data.get("video_path"):
        raise origin.error("no input video", "video_path")
    name = data.get("name") or default_name(origin)
    if not isinstance(name, str):
        raise origin.error(f"expected a name (text), got {name!r}", "name")
    try:
        # Checked here so the error names the key the user wrote.
        check_folder_name(name)
    except ValueError as exc:
        raise origin.error(str(exc), "name") from None
    variation: dict[str, Any] = {"name": name}
    if data.get("prompt"):
        variation["prompt"] = data["prompt"]
        if "prompt_path" in data:
            notes.append("ignored prompt_path: prompt is given and takes precedence")
    elif data.get("prompt_path"):
        variation["prompt_file"] = _path(data["prompt_path"], origin, "prompt_path")
    else:
        raise origin.error("no prompt: give prompt or prompt_path", "prompt")
    if data.get("negative_prompt"):
        variation["negative_prompt"] = data["negative_prompt"]
    if "seed" in data:
        variation["seed"] = data["seed"]
    else:
        variation["seed"] = _T25_DEFAULT_SEED
        notes.append("no seed: Cosmos-Transfer2.5's default 2025 used")
    model: dict[str, Any] = {}
    for key, target in (
        ("guidance", "guidance"),
        ("num_steps", "num_steps"),
        ("num_video_frames_per_chunk", "frames_per_chunk"),
        ("num_conditional_frames", "num_conditional_frames"),
    ):
        if key in data:
            model[target] = data[key]
    if data.get("sigma_max") is not None:
        model["sigma_max"] = _number(data["sigma_max"], origin, "sigma_max")
    spec_input: dict[str, Any] = {"dataset": _path(data["video_path"], origin, "video_path")}
    if data.get("max_frames") is not None:
        spec_input["frames"] = [0, data["max_frames"]]
    return Converted(
        data={
            "input": spec_input,
            "controls": controls,
            "variations": [variation],
            "model": model,
            "output": {"run_name": name},
        },
        notes=notes,
    )
