"""The job spec: what to read, which controls steer the model, what to generate.

Every model forbids unknown fields, so a misspelt key fails naming the key rather
than being silently ignored. Relative paths resolve against ``base_dir`` from the
validation context (the spec file's folder, see :mod:`bridge_core.spec.load`);
without one they are kept as written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

ControlName = Literal["edge", "depth", "seg", "blur"]
Preset = Literal["very_low", "low", "medium", "high", "very_high"]
RuleOp = Literal["set", "multiply", "max", "min", "add"]

CONTROL_NAMES: tuple[str, ...] = ("edge", "depth", "seg", "blur")
# Cosmos-Transfer calls the blur control "vis"; accepted so imported habits work.
CONTROL_ALIASES: dict[str, str] = {"vis": "blur"}
# Keywords a control's ``source`` may take besides "auto" and a path.
SOURCE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "edge": ("rgb", "geometry", "rgb+geometry"),
    "depth": (),
    "seg": ("semantic", "instance"),
    "blur": (),
}
ALL_SOURCE_KEYWORDS = frozenset({"auto"}.union(*SOURCE_KEYWORDS.values()))
# Only the Canny thresholds and the bilateral blur strength have presets.
PRESET_CONTROLS = ("edge", "blur")
# Cosmos-Transfer1 controls with no counterpart here, and what they are.
UNSUPPORTED_CONTROLS: dict[str, str] = {
    "keypoint": "keypoint control (human pose)",
    "hdmap": "hdmap control (driving HD maps)",
    "lidar": "lidar control",
    "upscale": "upscale control (4K upscaler)",
}
MASK_SUFFIXES = (".mp4", ".npy", ".safetensors", ".pt", ".pth")

_SLUG = re.compile(r"^[A-Za-z0-9_.-]+$")


def resolve_path(value: Path, base_dir: Path | None) -> Path:
    """``value`` joined to ``base_dir`` and normalised (``~`` expanded); as given without one.

    Normalised ("a/../b" -> "b") so dumps and manifests show the path a person
    would write; specs do not rely on ".." through symlinked folders.
    """
    value = value.expanduser()
    if value.is_absolute() or base_dir is None:
        return value
    return Path(os.path.normpath(base_dir / value))


def _resolve_in_context(value: Path, info: ValidationInfo) -> Path:
    base_dir = (info.context or {}).get("base_dir")
    return resolve_path(value, Path(base_dir) if base_dir is not None else None)


# A path that a spec file may give relative to its own folder.
SpecPath = Annotated[Path, AfterValidator(_resolve_in_context)]


# A prompt is a few hundred words (the text encoder reads 512 tokens), and every manifest
# line repeats it; anything much longer is a mistake.
PROMPT_MAX_CHARS = 2**16

# The folders beside the variations' folders in a run folder, so no variation may take them.
REPORT_FOLDER = "report"
REJECTED_FOLDER = "rejected"


def check_folder_name(value: str) -> str:
    """``value`` if it can be one folder inside the output folder, else ValueError.

    Run and variation names become folder names, so anything that could point
    elsewhere (separators, "..", absolute paths) is refused outright.
    """
    if not value:
        raise ValueError("must not be empty")
    escapes = (
        "/" in value
        or "\\" in value
        or value in (".", "..")
        or PurePosixPath(value).is_absolute()
        or PureWindowsPath(value).is_absolute()
        or bool(PureWindowsPath(value).drive)
    )
    if escapes:
        raise ValueError(
            f"{value!r} would escape the output folder: use one plain folder name "
            "of letters, digits, '_', '.' and '-'"
        )
    if not _SLUG.match(value):
        raise ValueError(f"{value!r} is not a plain folder name: use letters, digits, '_.-'")
    return value


FolderName = Annotated[str, AfterValidator(check_folder_name)]


class FieldProblem(ValueError):
    """A ValueError about a part of the value being validated (``subfield``, e.g. "depth.preset").

    Pydantic reports a validator's error at the validated field; the loader appends
    ``subfield`` so the message names the exact key.
    """

    def __init__(self, subfield: str, message: str):
        super().__init__(message)
        self.subfield = subfield


class UnsupportedProblem(FieldProblem):
    """A FieldProblem about a feature this project does not implement."""


class _Model(BaseModel):
    # No infinities or NaNs: ge=0 admits .inf, and an infinite weight or guidance
    # turned every generated frame black in a run that then reported success.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# ---------------------------------------------------------------------------
# Weight rules. bridge_core.weights builds [T,H,W] maps from these; the class and
# field names are its contract.


class ClassRule(_Model):
    """Weight by semantic class: pixels whose class matches a glob get ``value``."""

    classes: list[str] = Field(min_length=1, description="Globs on semantic class names.")
    value: float = Field(ge=0)
    op: RuleOp = "set"


class InstanceRule(_Model):
    """Weight by instance: pixels of prims whose path matches a glob get ``value``."""

    prim_paths: list[str] = Field(min_length=1, description="Globs on USD prim paths.")
    value: float = Field(ge=0)
    op: RuleOp = "set"


class KeyframeRule(_Model):
    """Weight over time: linear between keyframes, held constant outside them."""

    keyframes: dict[Annotated[int, Field(ge=0)], Annotated[float, Field(ge=0)]] = Field(
        min_length=1, description="Dataset frame index -> value."
    )
    op: RuleOp = "multiply"


class DepthBandRule(_Model):
    """Weight by distance: pixels with near <= depth < far (metres) get ``value``."""

    depth: tuple[Annotated[float, Field(ge=0)], float] = Field(description="[near, far] in metres.")
    value: float = Field(ge=0)
    feather: float = Field(default=0.0, ge=0, description="Linear ramp width in metres each side.")
    op: RuleOp = "set"

    @field_validator("depth")
    @classmethod
    def _near_before_far(cls, depth: tuple[float, float]) -> tuple[float, float]:
        if not depth[0] < depth[1]:
            raise ValueError(f"near must be less than far, got {list(depth)}")
        return depth


class MaskRule(_Model):
    """Weight from a mask: a png folder, mp4, npy, safetensors or .pt tensor ([T,H,W] or [H,W])."""

    mask: SpecPath
    value: float = Field(default=1.0, ge=0, description="Scale applied to the mask.")
    op: RuleOp = "set"

    @field_validator("mask")
    @classmethod
    def _known_mask_kind(cls, mask: Path) -> Path:
        # A folder of PNGs has no suffix we could check; existing folders pass too.
        if mask.suffix and mask.suffix.lower() not in MASK_SUFFIXES and not mask.is_dir():
            raise ValueError(
                f"{mask.name}: a mask is a png folder or a {', '.join(MASK_SUFFIXES)} file"
            )
        return mask


RULE_KEYS: dict[str, type[_Model]] = {
    "classes": ClassRule,
    "prim_paths": InstanceRule,
    "keyframes": KeyframeRule,
    "depth": DepthBandRule,
    "mask": MaskRule,
}
_RULE_TAGS = {key: cls.__name__ for key, cls in RULE_KEYS.items()}


def weight_rule_kind(value: Any) -> str | None:
    """The tag of the rule ``value`` describes: from its class, or from the one rule key it has."""
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    present = [key for key in RULE_KEYS if key in value]
    return _RULE_TAGS[present[0]] if len(present) == 1 else None


WeightRule = Annotated[
    Annotated[ClassRule, Tag("ClassRule")]
    | Annotated[InstanceRule, Tag("InstanceRule")]
    | Annotated[KeyframeRule, Tag("KeyframeRule")]
    | Annotated[DepthBandRule, Tag("DepthBandRule")]
    | Annotated[MaskRule, Tag("MaskRule")],
    Discriminator(
        weight_rule_kind,
        custom_error_type="weight_rule",
        custom_error_message=(
            "a weight rule needs exactly one of the keys " + ", ".join(RULE_KEYS)
        ),
    ),
]
RULE_TAG_NAMES = frozenset(_RULE_TAGS.values())


# ---------------------------------------------------------------------------
# The spec itself.


def parse_frames(value: Any) -> tuple[int, int | None] | None:
    """``"A:B"``, ``"A:"``, ``":B"``, ``[A, B]`` or None -> (start, stop) or None.

    Stop is excluded; a missing start is 0 and a missing stop (None) means to the end.
    """
    if value is None:
        return None
    if isinstance(value, str):
        start_text, sep, stop_text = value.partition(":")
        if not sep:
            raise ValueError(f"expected 'START:STOP' (either side may be empty), got {value!r}")
        try:
            start = int(start_text) if start_text.strip() else 0
            stop = int(stop_text) if stop_text.strip() else None
        except ValueError:
            raise ValueError(f"frame numbers must be integers, got {value!r}") from None
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        start = 0 if value[0] is None else value[0]
        stop = value[1]
        if not isinstance(start, int) or not (stop is None or isinstance(stop, int)):
            raise ValueError(f"frame numbers must be integers, got {list(value)}")
    else:
        raise ValueError(f"expected 'START:STOP' or [START, STOP], got {value!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if stop is not None and stop <= start:
        raise ValueError(f"start must be less than stop, got {start}:{stop}")
    return (start, stop)


class InputSpec(_Model):
    """Which frames to read."""

    dataset: SpecPath = Field(description="Dataset folder, or a video for imported Cosmos specs.")
    cameras: list[str] | None = Field(
        default=None, min_length=1, description="Render products to use; None = all."
    )
    frames: tuple[int, int | None] | None = Field(
        default=None,
        description="'START:STOP' (stop excluded; either side optional) or [START, STOP].",
    )
    clip_length: int | None = Field(
        default=None, ge=1, description="Frames per clip; None = model default."
    )

    @field_validator("frames", mode="before")
    @classmethod
    def _parse_frames(cls, value: Any) -> tuple[int, int | None] | None:
        return parse_frames(value)

    @field_serializer("frames")
    def _frames_text(self, frames: tuple[int, int | None] | None) -> str | None:
        # Written back as the compact "A:B" form a person would type.
        if frames is None:
            return None
        return f"{frames[0]}:{'' if frames[1] is None else frames[1]}"


class ControlSpec(_Model):
    """One control branch: where its video comes from and how strongly it steers."""

    enabled: bool = True
    source: str = Field(
        default="auto",
        description=(
            "'auto'; for edge 'rgb', 'geometry' or 'rgb+geometry'; for seg 'semantic' or "
            "'instance'; or a path to a control video or frame folder."
        ),
    )
    preset: Preset | None = Field(default=None, description="Edge and blur only.")
    weight: float = Field(default=1.0, ge=0)
    rules: list[WeightRule] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _resolve_source(cls, source: str, info: ValidationInfo) -> str:
        if not source:
            raise ValueError("must not be empty: use 'auto' or a path")
        if source in ALL_SOURCE_KEYWORDS:
            return source
        return str(_resolve_in_context(Path(source), info))

    @property
    def source_path(self) -> Path | None:
        """The control video or frame folder, when ``source`` is a path rather than a keyword."""
        return None if self.source in ALL_SOURCE_KEYWORDS else Path(self.source)


def check_control(name: str, control: ControlSpec) -> None:
    """Raise FieldProblem where ``control`` asks for something control ``name`` does not have."""
    if control.preset is not None and name not in PRESET_CONTROLS:
        raise FieldProblem(
            f"{name}.preset", f"presets apply to {' and '.join(PRESET_CONTROLS)} only, not {name}"
        )
    if control.source in ALL_SOURCE_KEYWORDS and control.source != "auto":
        allowed = SOURCE_KEYWORDS[name]
        if control.source not in allowed:
            choices = ", ".join(repr(k) for k in ("auto", *allowed))
            raise FieldProblem(
                f"{name}.source",
                f"{control.source!r} is not a source of {name}; use {choices} "
                f"or a path (write './{control.source}' for a file of that name)",
            )


def canonical_control_name(key: Any) -> str:
    """``key`` as one of CONTROL_NAMES ("vis" -> "blur"), else FieldProblem naming the key."""
    name = CONTROL_ALIASES.get(key, key)
    if name in CONTROL_NAMES:
        return name
    if key in UNSUPPORTED_CONTROLS:
        message = f"not supported by cosmos-transfer-bridge: {UNSUPPORTED_CONTROLS[key]}"
        raise UnsupportedProblem(key, message)
    raise FieldProblem(
        str(key), f"unknown control (controls are {', '.join(CONTROL_NAMES)}; 'vis' means blur)"
    )


class Variation(_Model):
    """One generated version of every clip: a prompt, and a seed."""

    name: FolderName
    prompt: str | None = Field(default=None, min_length=1, max_length=PROMPT_MAX_CHARS)
    prompt_file: SpecPath | None = None
    negative_prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    seed: int = 0

    @model_validator(mode="after")
    def _one_prompt(self) -> Variation:
        if (self.prompt is None) == (self.prompt_file is None):
            raise ValueError("give exactly one of prompt and prompt_file")
        return self


class ModelSpec(_Model):
    """Which Transfer model runs, and how it samples."""

    id: str = Field(
        default="default", min_length=1, description="Hub id, local path, 'default' or 'tiny'."
    )
    revision: str | None = None
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda|cuda:\d+)$")] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    num_steps: int = Field(default=35, ge=1)
    guidance: float = Field(default=3.0, ge=0)
    guide_controls: bool = Field(
        default=False,
        description="Run the unguided pass without the controls, so that guidance amplifies "
        "the controls as well as the prompt (the reference keeps them in both passes).",
    )
    frames_per_chunk: int | None = Field(
        default=None, ge=1, description="None = model default (93)."
    )
    num_conditional_frames: int = Field(default=1, ge=0, le=2)
    sigma_max: float | None = Field(default=None, ge=0)
    memory: Literal["none", "model_offload", "group_offload", "vae_tiling"] = "none"
    attention: Literal[
        "auto", "sdpa_flash", "sdpa_cudnn", "sdpa_efficient", "sdpa_math", "flash_attn"
    ] = Field(
        default="auto",
        description="Attention kernel: auto = PyTorch SDPA's own choice; sdpa_flash and "
        "sdpa_cudnn need a GPU, flash_attn the flash-attn package.",
    )

    @model_validator(mode="after")
    def _guidance_to_guide_controls(self) -> ModelSpec:
        if self.guide_controls and self.guidance == 0:
            raise FieldProblem(
                "guide_controls", "needs guidance > 0: without it there is no unguided pass"
            )
        return self

    @field_validator("frames_per_chunk")
    @classmethod
    def _whole_frame_groups(cls, frames: int | None) -> int | None:
        # The Wan VAE encodes frame 0 alone, then groups of 4 frames.
        if frames is not None and (frames - 1) % 4:
            raise ValueError(f"must be 1 + 4k (1, 5, 9, ..., 93), got {frames}")
        return frames


class OutputSpec(_Model):
    """Where results go, inside the output folder the run is given."""

    run_name: FolderName = "run"


class RaySpec(_Model):
    """Where and how wide to spread the job over Ray (``cosmos-bridge run --ray``)."""

    address: str = Field(
        default="auto",
        min_length=1,
        description="auto: the cluster this machine belongs to (RAY_ADDRESS, or one `ray "
        "start` made), else a new one on this machine; local: always a new one here; or a "
        "cluster's address (host:6379, ray://host:10001).",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Model copies; default one per GPU the cluster has, or one per "
        "cpus_per_worker CPUs where it has none.",
    )
    gpus_per_worker: float | None = Field(
        default=None, ge=0, description="Default 1 where the cluster has GPUs, else 0."
    )
    cpus_per_worker: float = Field(default=1, gt=0)


class CriticSpec(_Model):
    """The optional VLM critic (Cosmos-Reason through transformers), asked whether a clip
    shows anomalies (see bridge_core/quality/critic.py for the prompt)."""

    model: str = Field(
        default="nvidia/Cosmos-Reason1-7B",
        min_length=1,
        description="Hub id or local folder: a Qwen2.5-VL (Cosmos-Reason1) or Qwen3-VL "
        "(Cosmos-Reason2) checkpoint.",
    )
    revision: str | None = None
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda|cuda:\d+)$")] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    trials: int = Field(default=3, ge=1, le=32, description="Answers sampled per clip.")
    frames: int = Field(default=8, ge=1, le=64, description="Frames of a clip it is shown.")
    max_side: int = Field(
        default=448, ge=28, le=1792, description="Longest side of a frame it is shown, px."
    )
    min_score: float = Field(
        default=0.5, ge=0, le=1, description="Least share of trials that see no anomaly."
    )
    prompt: str | None = Field(
        default=None, min_length=1, max_length=PROMPT_MAX_CHARS, description="None: ours."
    )


class QualitySpec(_Model):
    """The quality gate: every generated clip is scored without a network (and by the
    critic where one is set); a clip failing a threshold is generated again with a derived
    seed up to ``retries`` times, then kept under ``rejected/`` instead of its variation's
    folder. A threshold set to null is not checked. The defaults are conservative: set on
    the shipped default model's good and broken clips (docs/quality.md)."""

    # Opt-in for now: the random tiny model's frames are noise the gate rejects.
    enabled: bool = False
    retries: int = Field(default=1, ge=0, le=10, description="New seeds tried after a failure.")
    # The absolute scores are off by default: they depend on the light as much as on the
    # clip (the default model's good night and fog clips have few edges, faint outlines),
    # where the lift and motion agreement compare the clip with itself (docs/quality.md).
    min_edge_f1: float | None = Field(
        default=None, ge=0, le=1, description="Edge F1 of the output's Canny edges vs the input's."
    )
    min_blur_ssim: float | None = Field(
        default=None, ge=-1, le=1, description="SSIM of the blurred output vs the blurred input."
    )
    min_label_agreement: float | None = Field(
        default=None,
        ge=0,
        description="How much stronger the output's outlines are near large objects' "
        "segmentation boundaries than anywhere (1: no relation); where the dataset has "
        "segmentation.",
    )
    max_temporal_ratio: float | None = Field(
        default=1.5,
        gt=0,
        description="Frame-to-frame change of the output over that of the input (flicker).",
    )
    min_motion_agreement: float | None = Field(
        default=0.15,
        ge=-1,
        le=1,
        description="Correlation of where the output changes from frame to frame with where "
        "the input does (0: frozen, noise or another scene's motion).",
    )
    min_control_lift: float | None = Field(
        default=1.0,
        description="Standard deviations by which the output's Edge F1, Blur SSIM and label "
        "agreement with its own input exceed the same scores against the input moved "
        "sideways or mirrored (about 0: the output ignores its controls).",
    )
    critic: CriticSpec | None = Field(default=None, description="The VLM critic; None: off.")


class JobSpec(_Model):
    """A whole job: input frames, controls, variations, model and output."""

    version: Literal[1] = 1
    input: InputSpec
    controls: dict[ControlName, ControlSpec]
    variations: list[Variation] = Field(min_length=1)
    model: ModelSpec = Field(default_factory=ModelSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    ray: RaySpec | None = Field(
        default=None, description="Run on Ray (bridge_core.run.distributed); None: in-process."
    )
    quality: QualitySpec = Field(default_factory=QualitySpec)

    @field_validator("controls", mode="before")
    @classmethod
    def _canonical_control_names(cls, controls: Any) -> Any:
        if not isinstance(controls, dict):
            return controls
        renamed: dict[str, Any] = {}
        written_as: dict[str, Any] = {}
        for key, value in controls.items():
            name = canonical_control_name(key)
            if name in renamed:
                first = written_as[name]
                raise FieldProblem(str(key), f"{first!r} and {key!r} name the same control")
            renamed[name] = value
            written_as[name] = key
        return renamed

    @field_validator("controls")
    @classmethod
    def _controls_fit(cls, controls: dict[str, ControlSpec]) -> dict[str, ControlSpec]:
        for name, control in controls.items():
            check_control(name, control)
        if not any(control.enabled for control in controls.values()):
            raise ValueError(f"enable at least one of {', '.join(CONTROL_NAMES)}")
        # Keep a fixed order so dumps and manifests do not depend on how the spec was written.
        return {name: controls[name] for name in CONTROL_NAMES if name in controls}

    @field_validator("variations")
    @classmethod
    def _unique_names(cls, variations: list[Variation]) -> list[Variation]:
        # Case-insensitive: the names become folders, and some file systems fold case.
        seen: dict[str, str] = {}
        for variation in variations:
            key = variation.name.casefold()
            if key in (REPORT_FOLDER, REJECTED_FOLDER):
                raise ValueError(
                    f"{variation.name!r} is the run's {key} folder; name the variation otherwise"
                )
            if key in seen:
                raise ValueError(
                    f"variation names must be unique: {seen[key]!r} and {variation.name!r}"
                )
            seen[key] = variation.name
        return variations

    def referenced_paths(self) -> list[Path]:
        """Every file or folder the spec points at, in spec order."""
        paths = [self.input.dataset]
        for control in self.controls.values():
            if control.source_path is not None:
                paths.append(control.source_path)
            paths.extend(rule.mask for rule in control.rules if isinstance(rule, MaskRule))
        paths.extend(v.prompt_file for v in self.variations if v.prompt_file is not None)
        return paths


SPEC_MODELS: tuple[type[BaseModel], ...] = (
    JobSpec,
    InputSpec,
    ControlSpec,
    Variation,
    ModelSpec,
    OutputSpec,
    QualitySpec,
    CriticSpec,
    ClassRule,
    InstanceRule,
    KeyframeRule,
    DepthBandRule,
    MaskRule,
)
