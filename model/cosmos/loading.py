"""Loading Cosmos-Transfer2.5 from the hub or from local folders, safetensors only.

Hub layout: the pipeline at revision ``diffusers/general`` (transformer/, vae/,
scheduler/, text_encoder/, tokenizer/), each branch at the root of revision
``diffusers/controlnet/general/<control>``. A folder written by
CosmosTransferModel.save_pretrained holds transformer/, vae/, scheduler/ and
controlnet/<control>/ beside a marker file; a distilled student's may hold only its
transformer, the marker naming the teacher's folder that has the rest (``parts_from``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLWan,
    CosmosControlNetModel,
    CosmosTransformer3DModel,
    UniPCMultistepScheduler,
)
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from bridge_core.controls.stack import CONTROL_NAMES
from transfer_model.cosmos._compat import ensure_padding_mask_resize
from transfer_model.cosmos.errors import CheckpointFormatError, ModelAccessError
from transfer_model.cosmos.guardrail import Origin
from transfer_model.cosmos.memory import MemoryPolicy
from transfer_model.cosmos.model import MARKER_FILE, CosmosTransferModel
from transfer_model.cosmos.prompts import (
    CosmosReasonEncoder,
    HashTextEncoder,
    PromptEmbeddingCache,
    hash_prompt_cache,
)
from transfer_model.cosmos.student import StudentSchedule

DEFAULT_REPO = "nvidia/Cosmos-Transfer2.5-2B"
# The project's own small model, trained by `cosmos-bridge train-default`, shipped inside
# the package (see its README.md, the model card).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"
# Its 4-step student (`cosmos-bridge distill`): a transformer; the rest is the teacher's.
DEFAULT_STUDENT_DIR = Path(__file__).resolve().parent.parent / "default_model_4step"
PIPELINE_REVISION = "diffusers/general"
BRANCH_REVISION = "diffusers/controlnet/general/{control}"
# What the 2B model was trained on: 93 frames per chunk, prompts of 512 tokens.
DEFAULT_FRAMES_PER_CHUNK = 93
DEFAULT_MAX_PROMPT_TOKENS = 512

# Configs and safetensors only: a pickle checkpoint is never even downloaded.
_WEIGHT_PATTERNS = ["*.json", "*.safetensors"]
# The 16 GB text encoder is fetched only when a prompt misses the embedding cache.
_PIPELINE_PATTERNS = [
    f"{sub}/*.{ext}"
    for sub in ("transformer", "vae", "scheduler")
    for ext in ("json", "safetensors")
]
_ENCODER_PATTERNS = ["text_encoder/*.json", "text_encoder/*.safetensors", "tokenizer/*"]
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def default_device() -> torch.device:
    """The GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU (the reference's precision), fp32 on a CPU (where bf16 is slow and inexact)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE asks for cached files only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch(repo_id: str, revision: str | None, allow_patterns: list[str]) -> Path:
    """Download (or find in the cache) ``repo_id`` at ``revision``; errors in one sentence."""
    offline = hub_offline()
    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=allow_patterns, local_files_only=offline
            )
        )
    except GatedRepoError as err:
        raise ModelAccessError(
            f"{where} is gated: accept its license at https://huggingface.co/{repo_id} with your "
            "account, then log in with `hf auth login` (or set HF_TOKEN) and retry."
        ) from err
    except RepositoryNotFoundError as err:
        raise ModelAccessError(
            f"{where} was not found or needs a token: check the id, then log in with "
            "`hf auth login` (or set HF_TOKEN) if the repository is private or gated."
        ) from err
    except RevisionNotFoundError as err:
        raise ModelAccessError(
            f"{where}: revision {revision!r} does not exist in {repo_id}."
        ) from err
    except LocalEntryNotFoundError as err:
        reason = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached"
        raise ModelAccessError(
            f"{where} is not in the local cache and {reason}: download it once with network access "
            "(or point to a local folder)."
        ) from err


def _resolve(source: str | Path, revision: str | None, patterns: list[str]) -> Path:
    """A local folder as is; otherwise a hub snapshot of the files matching ``patterns``."""
    if Path(source).is_dir():
        return Path(source)
    return fetch(str(source), revision, patterns)


def check_safetensors(folder: Path) -> None:
    """Refuse a model folder whose weights are not safetensors (pickles can run code)."""
    if any(folder.glob("*.safetensors")):
        return
    files = folder.iterdir() if folder.is_dir() else []
    pickles = sorted(p.name for p in files if p.suffix in _PICKLE_SUFFIXES)
    found = f"holds {', '.join(pickles)} but " if pickles else ""
    raise CheckpointFormatError(
        f"{folder} {found}has no .safetensors weights; only safetensors checkpoints are loaded "
        "(convert the checkpoint with safetensors.torch.save_file)."
    )


def _origin(sources: list[str | Path], folder: Path) -> Origin:
    """The project's own only if no source is NVIDIA's hub and the folder carries our marker."""
    if any(not Path(s).is_dir() and str(s).startswith("nvidia/") for s in sources):
        return "nvidia"
    marker = folder / MARKER_FILE
    if marker.exists() and json.loads(marker.read_text()).get("origin") == "project":
        return "project"
    return "nvidia"


def vae_dtype(folder: Path, dtype: torch.dtype) -> torch.dtype:
    """The VAE's dtype for a model run in ``dtype``: fp32 where its weights are stored in
    fp32 (diffusers saves the Wan VAE so beside a bf16 transformer, and its decoder is
    meant to run in it), ``dtype`` otherwise."""
    from safetensors import safe_open

    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        with safe_open(str(weights[0]), "pt") as file:
            names = list(file.keys())
            if names and file.get_slice(names[0]).get_dtype() == "F32":
                return torch.float32
    return dtype


def load_transfer_model(
    source: str | Path = DEFAULT_REPO,
    controls: tuple[str, ...] = CONTROL_NAMES,
    revision: str | None = PIPELINE_REVISION,
    branch_sources: dict[str, str | Path] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    memory: MemoryPolicy = "none",
    prompt_cache_dir: Path | None = None,
) -> CosmosTransferModel:
    """Load the base model and one branch per control.

    source: a hub id (``revision`` applies) or a local folder (ours or the hub layout).
    branch_sources: control -> hub id or folder; by default each branch comes from ``source``
    (folder: controlnet/<control>/; hub: revision diffusers/controlnet/general/<control>).
    dtype: default bf16 on a GPU, fp32 on a CPU; the VAE stays fp32 where it is stored so
    (:func:`vae_dtype`).
    """
    unknown = set(controls) - set(CONTROL_NAMES)
    if unknown:
        raise ValueError(f"controls {sorted(unknown)} are unknown; known: {CONTROL_NAMES}")
    ensure_padding_mask_resize()
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    folder = _resolve(source, revision, _PIPELINE_PATTERNS)
    marker_file = folder / MARKER_FILE
    marker = json.loads(marker_file.read_text()) if marker_file.exists() else {}
    shared = folder / marker["parts_from"] if "parts_from" in marker else None

    def part(name: str) -> Path:
        """Where a part lives: in the folder, else in the folder it shares parts with."""
        path = folder / name
        return shared / name if shared is not None and not path.exists() else path

    def load(cls: type, path: Path, as_dtype: torch.dtype = dtype) -> torch.nn.Module:
        check_safetensors(path)
        return cls.from_pretrained(path, torch_dtype=as_dtype, use_safetensors=True)

    branches = {}
    for control in controls:
        if branch_sources and control in branch_sources:
            path = _resolve(branch_sources[control], None, _WEIGHT_PATTERNS)
        elif part(f"controlnet/{control}").is_dir():
            path = part(f"controlnet/{control}")
        elif Path(source).is_dir():
            raise ValueError(
                f"{folder} has no controlnet/{control}/; pass branch_sources[{control!r}]"
            )
        else:
            path = fetch(str(source), BRANCH_REVISION.format(control=control), _WEIGHT_PATTERNS)
        branches[control] = load(CosmosControlNetModel, path)

    prompt_cache = None
    encoder = marker.get("text_encoder") or {}
    if encoder.get("id", "").startswith(HashTextEncoder.ENCODER_ID):
        # A model trained on the hash encoder's vectors (the project's default model).
        width = CosmosTransformer3DModel.load_config(folder / "transformer")["text_embed_dim"]
        prompt_cache = hash_prompt_cache(width, encoder["max_length"], prompt_cache_dir)
        encoder = {}
    elif Path(source).is_dir() and (folder / "text_encoder").is_dir():
        # A folder the user gave. A hub snapshot gains text_encoder/ once the encoder is
        # downloaded, and must keep its hub id: the prompt cache is keyed by it.
        encoder = {"id": str(folder), "revision": None}
    elif not encoder and not Path(source).is_dir():
        encoder = {"id": str(source), "revision": revision}
    if encoder:

        def load_encoder() -> CosmosReasonEncoder:
            path = _resolve(encoder["id"], encoder["revision"], _ENCODER_PATTERNS)
            return CosmosReasonEncoder.from_pretrained(path, device, dtype, memory)

        prompt_cache = PromptEmbeddingCache(
            encoder_id=encoder["id"],
            revision=encoder["revision"],
            max_length=encoder.get("max_length", DEFAULT_MAX_PROMPT_TOKENS),
            load_encoder=load_encoder,
            folder=prompt_cache_dir,
        )

    return CosmosTransferModel(
        transformer=load(CosmosTransformer3DModel, folder / "transformer"),
        vae=load(AutoencoderKLWan, part("vae"), vae_dtype(part("vae"), dtype)),
        branches=branches,
        scheduler=UniPCMultistepScheduler.from_pretrained(part("scheduler")),
        frames_per_chunk=marker.get("frames_per_chunk", DEFAULT_FRAMES_PER_CHUNK),
        origin=_origin([source, *(branch_sources or {}).values()], folder),
        prompt_cache=prompt_cache,
        device=device,
        memory=memory,
        student=StudentSchedule.from_json(marker["student"]) if "student" in marker else None,
    )
