"""From a model id to a TransferModel, with what a run records about it.

The only place in bridge_core that imports torch and transfer_model, inside
:func:`resolve_model`, so that bridge_core stays importable without them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge_core.errors import BridgeError, InputError
from bridge_core.run.protocol import TransferModel
from bridge_core.spec.models import ModelSpec

DEFAULT_MODEL_ID = "default"
TINY_MODEL_ID = "tiny"
# The tiny model's weights come from this seed, so a run is reproducible anywhere.
TINY_SEED = 0
RANDOM_NOTICE = (
    "model {id!r} is a RANDOM tiny model: its frames are noise that only prove "
    "dataset -> controls -> model -> frames runs, not what the frames will look like."
)
DEFAULT_NOTICE = (
    "model 'default' is the project's small CPU model (128x128, trained on procedural "
    "warehouses under four lighting conditions): it shows what transfer does, at toy "
    "quality; use nvidia/Cosmos-Transfer2.5-2B on a GPU for real data."
)
# Bumped whenever the shipped weights change; run.json records it.
DEFAULT_MODEL_REVISION = "default-v3.2"
# Its 4-step student (`cosmos-bridge distill`), selected by model.revision.
DEFAULT_STUDENT_REVISION = "default-v3.2-4step"


class ModelNotInstalledError(InputError):
    """The model extra (torch, diffusers) is not installed."""


@dataclass
class ResolvedModel:
    """A model ready to generate, and what run.json records about it.

    weights: module name -> sha256 of its parameters and buffers
    random:  True when the weights are random, so the frames are noise
    notes:   what a user should be told before the run
    student: a distilled student's schedule and teacher (StudentSchedule.to_json), else None
    """

    model: TransferModel
    id: str
    revision: str | None = None
    weights: dict[str, str] = field(default_factory=dict)
    random: bool = False
    notes: list[str] = field(default_factory=list)
    student: dict[str, Any] | None = None


def resolve_model(spec: ModelSpec, model_id: str | None = None) -> ResolvedModel:
    """The model ``model_id`` (default: ``spec.id``) names, built or loaded for ``spec``.

    "default" is the small trained model shipped in the package; "tiny" is a random
    model of diffusers' test size (said loudly: its frames are noise); anything else
    is a hub id or a local folder for transfer_model.load_transfer_model. Text prompts
    reach models without a text encoder through a stand-in hash encoder.
    """
    model_id = model_id or spec.id
    try:
        import torch

        import transfer_model
    except ImportError as exc:
        raise ModelNotInstalledError(
            f"generating needs the model extra ({exc}); install it with: pip install -e '.[model]'"
        ) from exc

    device = None if spec.device == "auto" else spec.device
    if model_id == TINY_MODEL_ID:
        width = transfer_model.MODEL_PRESETS[TINY_MODEL_ID].text_embed_dim
        # Random, not zeroed, branches: the controls then do reach the frames.
        model = transfer_model.CosmosTransferModel.from_preset(
            TINY_MODEL_ID,
            seed=TINY_SEED,
            zero_init_branches=False,
            prompt_cache=transfer_model.hash_prompt_cache(width),
            device=device or "cpu",
        )
        resolved = ResolvedModel(model, model_id, random=True)
        resolved.notes.append(RANDOM_NOTICE.format(id=model_id))
    elif model_id == DEFAULT_MODEL_ID:
        folders = {
            DEFAULT_MODEL_REVISION: transfer_model.DEFAULT_MODEL_DIR,
            DEFAULT_STUDENT_REVISION: transfer_model.DEFAULT_STUDENT_DIR,
        }
        revision = spec.revision or DEFAULT_MODEL_REVISION
        if revision not in folders:
            raise InputError(
                f"the default model has revisions {', '.join(folders)}, not {revision!r}",
                field="model.revision",
            )
        folder = folders[revision]
        if not (folder / "transformer").is_dir():
            raise InputError(
                f"the default model's weights are missing from {folder}; reinstall the package "
                "or train them with `cosmos-bridge train-default`",
                field="model.id",
            )
        # Small enough that fp32 costs nothing, and bf16 gains nothing, on any device.
        model = transfer_model.load_transfer_model(
            folder, device=device or "cpu", dtype=torch.float32, memory=spec.memory
        )
        resolved = ResolvedModel(model, model_id, revision=revision)
        resolved.notes.append(DEFAULT_NOTICE)
    else:
        if not Path(model_id).is_dir() and not _is_hub_id(model_id):
            raise InputError(
                "no such model folder (nor a hub id like nvidia/Cosmos-Transfer2.5-2B)",
                Path(model_id),
                "model.id",
            )
        dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
        kwargs: dict[str, Any] = {}
        if spec.revision is not None:
            kwargs["revision"] = spec.revision
        try:
            model = transfer_model.load_transfer_model(
                model_id,
                device=device,
                dtype=dtypes.get(spec.dtype),
                memory=spec.memory,
                **kwargs,
            )
        except BridgeError:
            raise
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load model {model_id!r}: {exc}", field="model.id") from exc
        revision = spec.revision
        if revision is None and not Path(model_id).is_dir():
            revision = transfer_model.PIPELINE_REVISION
        resolved = ResolvedModel(model, model_id, revision)
        if model.prompt_cache is None:
            width = model.transformer.config.text_embed_dim
            model.prompt_cache = transfer_model.hash_prompt_cache(width)
            resolved.notes.append(
                f"model {model_id!r} has no text encoder: prompts go through the stand-in hash "
                "encoder, which gives them no meaning"
            )
    if spec.frames_per_chunk is not None:
        model.frames_per_chunk = spec.frames_per_chunk
    if spec.attention != "auto":
        try:
            model.set_attention(spec.attention)
        except (RuntimeError, ValueError) as exc:
            raise InputError(
                f"attention {spec.attention!r} cannot run here: {exc}", field="model.attention"
            ) from exc
    resolved.weights = weight_digests(model)
    if getattr(model, "student", None) is not None:
        resolved.student = model.student.to_json()
        resolved.notes.append(
            f"model {model_id!r} is a distilled student of {model.student.teacher}: it samples "
            f"in {', '.join(map(str, model.student.steps))} step(s) without guidance"
        )
    return resolved


def _is_hub_id(text: str) -> bool:
    """Whether ``text`` has the form of a Hugging Face repo id ("owner/name")."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def weight_digests(model: Any) -> dict[str, str]:
    """sha256 per module of a CosmosTransferModel, over its tensors' names, dtypes, bytes."""
    import torch

    modules = {"transformer": model.transformer, "vae": model.vae}
    modules.update({f"controlnet/{n}": b for n, b in model.branches.items()})
    digests = {}
    for name, module in modules.items():
        h = hashlib.sha256()
        for key, tensor in sorted(module.state_dict().items()):
            h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            h.update(
                tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
            )
        digests[name] = h.hexdigest()
    return digests
