"""CosmosTransferModel: the TransferModel that bridge_core's run loop calls."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKLWan,
    CosmosControlNetModel,
    CosmosTransformer3DModel,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from transfer_model.cosmos import configs, sampling
from transfer_model.cosmos.errors import GuardrailBlockedError
from transfer_model.cosmos.fusion import ENCODER_FRAME_GROUP, TokenGrid
from transfer_model.cosmos.guardrail import Origin, SafetyChecker, checker_for
from transfer_model.cosmos.memory import MemoryPolicy, Placement
from transfer_model.cosmos.prompts import PromptEmbeddingCache
from transfer_model.cosmos.student import StudentSchedule

# The file that marks a folder as saved by this project, with what loading needs.
MARKER_FILE = "transfer_model.json"
# Clips a frame-by-frame model (1-frame chunks) is given by default: its training clips'
# length. Seeds are per clip, so 1-frame clips would each start from their own noise.
FRAME_MODEL_CLIP_FRAMES = 9

# Cosmos-Transfer2.5's default negative prompt (diffusers' pipeline uses the same text).
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a series of frames showing ugly scenes, static with no motion, motion "
    "blur, over-saturation, shaky footage, low resolution, grainy texture, pixelated images, "
    "poorly lit areas, underexposed and overexposed scenes, poor color balance, washed out "
    "colors, choppy sequences, jerky movements, low frame rate, artifacting, color banding, "
    "unnatural transitions, outdated special effects, fake elements, unconvincing visuals, "
    "poorly edited content, jump cuts, visual noise, and flickering. Overall, the video is of "
    "poor quality."
)


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> [T, H, W, 3] uint8.

    Truncates like diffusers' pipeline (x * 255 cast to uint8), so outputs match it.
    """
    frames = (video[0] / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).float().numpy()
    return (frames * 255).astype(np.uint8)


# Attention kernels by the name a job spec gives (model.attention) -> diffusers' backend
# (diffusers.models.attention_dispatch). "auto" keeps diffusers' default, PyTorch's SDPA
# choosing its kernel itself; the sdpa_* names pin one of SDPA's kernels (flash and cuDNN
# need a GPU); flash_attn needs the flash-attn package.
ATTENTION_BACKENDS: dict[str, str | None] = {
    "auto": None,
    "sdpa_flash": "_native_flash",
    "sdpa_cudnn": "_native_cudnn",
    "sdpa_efficient": "_native_efficient",
    "sdpa_math": "_native_math",
    "flash_attn": "flash",
}


class CosmosTransferModel:
    """The Cosmos-Transfer2.5 base transformer with one branch per control, the Wan VAE
    and the flow UniPC scheduler; turns a ControlStack into frames.

    prompts: text is embedded through ``prompt_cache`` (None for models without a text
    encoder, which then take embeddings only). ``student``: set for a distilled student,
    which samples on its own few noise levels without a guidance pass.
    """

    def __init__(
        self,
        transformer: CosmosTransformer3DModel,
        vae: AutoencoderKLWan,
        branches: dict[str, CosmosControlNetModel],
        scheduler: UniPCMultistepScheduler,
        frames_per_chunk: int,
        origin: Origin,
        prompt_cache: PromptEmbeddingCache | None = None,
        safety_checker: SafetyChecker | None = None,
        device: torch.device | str = "cpu",
        memory: MemoryPolicy = "none",
        student: StudentSchedule | None = None,
    ):
        unknown = set(branches) - set(CONTROL_NAMES)
        if unknown:
            raise ValueError(f"branches {sorted(unknown)} are not controls; known: {CONTROL_NAMES}")
        self.transformer, self.vae, self.scheduler = transformer.eval(), vae.eval(), scheduler
        self.branches = {name: branches[name].eval() for name in CONTROL_NAMES if name in branches}
        if frames_per_chunk < 1 or (frames_per_chunk - 1) % ENCODER_FRAME_GROUP:
            raise ValueError(
                f"frames_per_chunk={frames_per_chunk} is not 1 + {ENCODER_FRAME_GROUP}k "
                f"(1, 5, 9, ..., 93): the Wan VAE encodes frame 0 alone, then groups of "
                f"{ENCODER_FRAME_GROUP} (frames_per_chunk in the model folder's {MARKER_FILE})"
            )
        self.frames_per_chunk = frames_per_chunk
        self.student = student
        self.origin = origin
        self.prompt_cache = prompt_cache
        self.safety_checker = safety_checker if safety_checker is not None else checker_for(origin)
        self.device = torch.device(device)
        self.placement = Placement(memory, self.device, vae, [transformer, *self.branches.values()])

    @classmethod
    def from_preset(
        cls,
        preset: str,
        controls: tuple[str, ...] = CONTROL_NAMES,
        seed: int = 0,
        zero_init_branches: bool = True,
        **kwargs: Any,
    ) -> CosmosTransferModel:
        """A random model of a ``configs.MODEL_PRESETS`` size; the project's own: no guardrail."""
        if preset not in configs.MODEL_PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {sorted(configs.MODEL_PRESETS)}")
        sizes = configs.MODEL_PRESETS[preset]
        torch.manual_seed(seed)
        transformer = configs.build_transformer(sizes)
        branches = {name: configs.build_branch(sizes, zero_init_branches) for name in controls}
        vae = configs.build_vae(sizes)
        return cls(
            transformer,
            vae,
            branches,
            configs.flow_scheduler(sizes.sampler_sigma_max),
            frames_per_chunk=sizes.frames_per_chunk,
            origin="project",
            **kwargs,
        )

    def set_attention(self, name: str) -> None:
        """Use the attention kernel ``name`` (a key of ATTENTION_BACKENDS) in the transformer
        and every branch; ValueError for a name not there, RuntimeError (diffusers') for a
        kernel this machine lacks."""
        if name not in ATTENTION_BACKENDS:
            raise ValueError(f"attention {name!r} is not one of {sorted(ATTENTION_BACKENDS)}")
        backend = ATTENTION_BACKENDS[name] or "native"
        # diffusers warns on every call that the API is experimental; the choice is ours.
        quiet = logging.getLogger("diffusers.models.modeling_utils")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            for module in (self.transformer, *self.branches.values()):
                module.set_attention_backend(backend)
        finally:
            quiet.setLevel(level)

    @property
    def grid(self) -> TokenGrid:
        """How this model's VAE and transformer turn pixels into tokens (their configs)."""
        return TokenGrid.of(self.vae, self.transformer)

    @property
    def requirements(self) -> ModelRequirements:
        return ModelRequirements(
            resolution_multiple=math.lcm(*self.grid.stride),
            frames_per_chunk=self.frames_per_chunk
            if self.frames_per_chunk > 1
            else FRAME_MODEL_CLIP_FRAMES,
            supported_controls=tuple(self.branches),
            max_resolution=self.max_resolution,
            leaves_cpu_free=self.device.type != "cpu",
            sampling_steps=None if self.student is None else self.student.steps,
            takes_guidance=self.student is None,
        )

    @property
    def max_resolution(self) -> tuple[int, int]:
        """(W, H) the learnable positional embedding covers: max_size latent pixels, each
        ``grid.spatial`` pixels wide."""
        _, max_h, max_w = self.transformer.config.max_size
        spatial = self.grid.spatial
        return spatial * max_w, spatial * max_h

    def check_inputs(self, controls: ControlStack, settings: SamplingSettings) -> None:
        """Raise ValueError naming what the model cannot take."""
        missing = [name for name in controls.names if name not in self.branches]
        if missing:
            raise ValueError(
                f"controls {missing} have no branch in this model; it has {list(self.branches)}"
            )
        frames, height, width = controls.shape
        multiple = self.requirements.resolution_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"resolution {width}x{height} is not a multiple of {multiple}; pad or resize"
            )
        max_w, max_h = self.max_resolution
        if height > max_h or width > max_w:
            raise ValueError(
                f"resolution {width}x{height} exceeds this model's maximum {max_w}x{max_h}"
            )
        if frames <= settings.num_conditional_frames:
            raise ValueError(
                f"a clip of {frames} frames is too short: it needs more than "
                f"num_conditional_frames={settings.num_conditional_frames}"
            )
        # A model of 1-frame chunks has nothing to condition on: its setting is ignored.
        longest = max(self.frames_per_chunk, sampling.MIN_CHUNK_FRAMES)
        if self.frames_per_chunk > 1 and settings.num_conditional_frames >= longest:
            raise ValueError(
                f"num_conditional_frames={settings.num_conditional_frames} must be smaller than "
                f"frames_per_chunk={self.frames_per_chunk}"
            )
        if settings.num_steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {settings.num_steps}")
        problem = self.student and self.student.check(settings.num_steps, settings.guidance)
        if problem:
            raise ValueError(problem[1])

    def embed(self, *prompts: str | torch.Tensor) -> list[torch.Tensor]:
        """Texts or embeddings ([L, D] or [1, L, D]) -> [1, L, D] each.

        All texts go to the cache at once, so one miss builds the encoder once.
        """
        texts = [p for p in prompts if isinstance(p, str)]
        if texts and self.prompt_cache is None:
            raise ValueError(
                "this model has no text encoder: pass prompt embeddings (a tensor), not text"
            )
        embedded = dict(zip(texts, self.prompt_cache.embed(texts) if texts else [], strict=True))
        return [
            embedded[p] if isinstance(p, str) else (p if p.ndim == 3 else p[None]) for p in prompts
        ]

    def generate(
        self,
        controls: ControlStack,
        prompt: str | torch.Tensor,
        negative_prompt: str | torch.Tensor | None,
        seed: int,
        settings: SamplingSettings,
    ) -> np.ndarray:
        """Frames [T, H, W, 3] uint8 for ``controls`` of shape (T, H, W).

        A negative prompt of None means Cosmos-Transfer's default one (when guidance > 0).
        """
        self.check_inputs(controls, settings)
        with self._checker_on_device():
            for text in (prompt, negative_prompt):
                if isinstance(text, str) and not self.safety_checker.check_text_safety(text):
                    raise GuardrailBlockedError(
                        f"the guardrail rejected the prompt {text!r}; "
                        "change it to comply with NVIDIA's model license"
                    )
        if negative_prompt is None and settings.guidance > 0:
            negative_prompt = DEFAULT_NEGATIVE_PROMPT
        if negative_prompt is None:
            embeds, negative_embeds = self.embed(prompt)[0], None
        else:
            embeds, negative_embeds = self.embed(prompt, negative_prompt)

        branches = [
            sampling.Branch(
                name,
                self.branches[name],
                # [T, H, W, 3] in [0, 1] -> [1, 3, T, H, W] in [-1, 1]; grey controls
                # may arrive as read-only broadcast views, hence the contiguous copy.
                _to_tensor(controls.videos[name]).permute(3, 0, 1, 2)[None] * 2 - 1,
                _to_tensor(controls.weights[name]),
            )
            for name in controls.names
        ]
        # A fresh scheduler per clip: UniPC keeps solver history between steps.
        overrides = {} if settings.sigma_max is None else {"sigma_max": settings.sigma_max}
        scheduler = UniPCMultistepScheduler.from_config(self.scheduler.config, **overrides)
        sigmas = None
        if self.student is not None:
            scheduler = FlowMatchEulerDiscreteScheduler()
            sigmas = self.student.sigmas_for(settings.num_steps)
        result = sampling.sample(
            self.transformer,
            self.vae,
            scheduler,
            branches,
            embeds,
            negative_embeds,
            # A CPU generator gives the same draws on every device.
            torch.Generator().manual_seed(seed),
            num_steps=settings.num_steps,
            guidance=settings.guidance,
            frames_per_chunk=self.frames_per_chunk,
            num_cond_frames=settings.num_conditional_frames,
            device=self.device,
            on_phase=self.placement.enter,
            # Twice the activations in one forward: only where the models are not offloaded.
            batch_guidance=self.placement.policy in ("none", "vae_tiling"),
            sigmas=sigmas,
            guide_controls=settings.guide_controls,
        )
        with self._checker_on_device():
            frames = self.safety_checker.check_video_safety(frames_to_uint8(result.video))
        if frames is None:
            raise GuardrailBlockedError(
                "the guardrail rejected the generated video; no frames were kept"
            )
        return frames

    @contextlib.contextmanager
    def _checker_on_device(self) -> Iterator[None]:
        """The guardrail's models on the execution device while they check, in CPU memory
        otherwise (as diffusers' Cosmos pipelines do): they are large, and denoising
        needs the GPU."""
        move = getattr(self.safety_checker, "to", None)
        if move is None or self.device.type == "cpu":
            yield
            return
        move(self.device)
        try:
            yield
        finally:
            move("cpu")

    def save_pretrained(self, folder: str | Path, parts_from: Path | None = None) -> None:
        """Write every model as safetensors, with the marker that loading reads back.

        parts_from: a saved model whose VAE, scheduler and branches are this one's (a
        student's teacher): only the transformer is written, and the marker points there.
        """
        folder = Path(folder)
        self.transformer.save_pretrained(folder / "transformer", safe_serialization=True)
        if parts_from is None:
            self.vae.save_pretrained(folder / "vae", safe_serialization=True)
            self.scheduler.save_pretrained(folder / "scheduler")
            for name, branch in self.branches.items():
                branch.save_pretrained(folder / "controlnet" / name, safe_serialization=True)
        marker: dict[str, Any] = {
            "origin": self.origin,
            "frames_per_chunk": self.frames_per_chunk,
            "controls": list(self.branches),
        }
        if self.prompt_cache is not None:
            marker["text_encoder"] = {
                "id": self.prompt_cache.encoder_id,
                "revision": self.prompt_cache.revision,
                "max_length": self.prompt_cache.max_length,
            }
        if self.student is not None:
            marker["student"] = self.student.to_json()
        if parts_from is not None:
            # Relative, so the two folders can move together (the package ships them so).
            marker["parts_from"] = os.path.relpath(Path(parts_from).resolve(), folder.resolve())
        (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2))


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor of a numpy array that may be a read-only or broadcast view."""
    return torch.from_numpy(np.require(array, requirements=["C", "W"]))
