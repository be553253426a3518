"""The optional VLM critic: a Cosmos-Reason model asked whether a generated clip shows
physical implausibility or artifacts.

Cosmos-Reason1 (``nvidia/Cosmos-Reason1-7B``) is a Qwen2.5-VL and loads as
``Qwen2_5_VLForConditionalGeneration``; Cosmos-Reason2 is a Qwen3-VL and loads as
``Qwen3VLForConditionalGeneration``; either by hub id or from a local folder. As in
NVIDIA's video-critic example, the model is asked for an ``<anomaly>Yes|No</anomaly>``
answer over several sampled trials, and the clip's score is the share of trials that
found no anomaly; the first anomaly's stated reason is kept. It is shown ``frames``
evenly spaced frames, in order, as pictures (Qwen-VL reads several pictures as one
sequence; its video processor would need torchvision as well), resized so their longer
side is at most ``max_side`` and both sides are multiples of the vision encoder's patch
grid (28 px for Qwen2.5-VL, 32 for Qwen3-VL). The prompt is written in the ChatML form
both model generations share, so neither processor class nor chat template is needed.

Answers are cached on disk by the digest of the frames shown and the settings
($XDG_CACHE_HOME/cosmos-transfer-bridge/critic), so the model is loaded and asked only
on a cache miss: a clip judged again (changed thresholds, a redone report) costs
nothing. The model is loaded on the first miss, on the Transfer model's device unless
``device`` says otherwise, beside it (a 7B critic in bf16 takes about 17 GB more).

torch and transformers are imported only when the model loads (the ``model`` extra).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge_core.errors import InputError
from bridge_core.outputs import write_bytes_atomic
from bridge_core.quality.gate import CriticAnswer, critic_question
from bridge_core.spec.models import CriticSpec, QualitySpec

CRITIC_PROMPT = (
    "These pictures are frames of one video, in order. The video was generated from a "
    "simulator's render to train a robot's perception. Check it for defects that would "
    "make it wrong as training data: objects that appear, vanish, melt, bend or move by "
    "themselves; shapes that warp from frame to frame; flicker; smeared or garbled "
    "textures; lighting or shadows that are physically impossible. First give your "
    "reason in one sentence as <reason>...</reason>, then answer <anomaly>Yes</anomaly> "
    "if there is any such defect, or <anomaly>No</anomaly> if there is none."
)
# The ChatML turn both Qwen2.5-VL and Qwen3-VL are trained on; each picture is its
# vision tokens between the vision markers.
_TURN = "<|im_start|>user\n{pictures}{prompt}<|im_end|>\n<|im_start|>assistant\n"
_PICTURE = "<|vision_start|>{pads}<|vision_end|>"
_PAD = "<|image_pad|>"
MAX_NEW_TOKENS = 256
TEMPERATURE = 0.7
# Each Cosmos-Reason generation's transformers class, by the config's model_type.
MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
_ANOMALY = re.compile(r"<anomaly>\s*(yes|no)\s*</anomaly>", re.IGNORECASE)
_REASON = re.compile(r"<reason>(.*?)</reason>", re.IGNORECASE | re.DOTALL)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/cosmos-transfer-bridge/critic (~/.cache when unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cosmos-transfer-bridge" / "critic"


def sample_frames(frames: np.ndarray, count: int, max_side: int, grid: int) -> np.ndarray:
    """``count`` evenly spaced frames of a clip [T,H,W,3] uint8 (first and last among
    them; all where it has fewer), resized to fit ``max_side`` with sides that are
    multiples of ``grid``: [N,h,w,3] uint8."""
    t, h, w, _ = frames.shape
    picked = np.unique(np.linspace(0, t - 1, min(count, t)).round().astype(int))
    scale = min(max_side / max(h, w), 1.0)
    size = (max(round(w * scale / grid), 1) * grid, max(round(h * scale / grid), 1) * grid)
    return np.stack([cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA) for i in picked])


@dataclass(frozen=True)
class Answer:
    """One trial's answer: anomaly seen (None: no <anomaly> tag), and why."""

    anomaly: bool | None
    reason: str


def parse_answer(text: str) -> Answer:
    """An answer's last ``<anomaly>Yes|No</anomaly>`` and its ``<reason>`` (else the text
    before the tag)."""
    tags = _ANOMALY.findall(text)
    reasons = _REASON.findall(text)
    before = _ANOMALY.split(text)[0]
    reason = reasons[-1] if reasons else before
    anomaly = None if not tags else tags[-1].lower() == "yes"
    return Answer(anomaly, " ".join(reason.split())[:300])


def score_answers(answers: list[Answer]) -> CriticAnswer:
    """The share of trials that saw no anomaly (an answer without a tag counts as one),
    and the first anomaly's reason."""
    clean = sum(a.anomaly is False for a in answers)
    flagged = [a for a in answers if a.anomaly is not False]
    reason = ""
    if flagged:
        first = flagged[0]
        reason = first.reason if first.anomaly else f"no <anomaly> tag: {first.reason[:80]}"
    return CriticAnswer(clean / len(answers), reason)


@dataclass
class ReasonModel:
    """A loaded critic: the Qwen-VL model, its tokenizer and its image processor."""

    model: Any
    tokenizer: Any
    image_processor: Any

    @property
    def grid(self) -> int:
        """Picture sides are multiples of this: patch size x spatial merge."""
        return self.image_processor.patch_size * self.image_processor.merge_size


Loader = Callable[[CriticSpec], ReasonModel]
"""Loads the model a CriticSpec names; tests pass a tiny random one."""


class Critic:
    """Cosmos-Reason as the gate's critic (:class:`bridge_core.quality.gate.ClipCritic`).

    loader: builds the model on the first cache miss (default: from the hub or
    a folder, :func:`load_reason_model`); cache_dir: where answers are kept;
    max_new_tokens: the longest answer (a reason is one sentence).
    """

    def __init__(
        self,
        spec: CriticSpec,
        loader: Loader | None = None,
        cache_dir: Path | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
    ):
        self.spec = spec
        self.max_new_tokens = max_new_tokens
        self.loader = loader or load_reason_model
        self.cache_dir = cache_dir or default_cache_dir()
        self.prompt = spec.prompt or CRITIC_PROMPT
        self._loaded: ReasonModel | None = None
        self.asked = 0
        """Clips the model was asked about (cache misses)."""

    def key(self, frames: np.ndarray) -> str:
        """The cache key of a clip [T,H,W,3] uint8 under these settings."""
        h = hashlib.sha256()
        asked = {**critic_question(self.spec), "prompt": self.prompt}
        h.update(json.dumps(asked, sort_keys=True).encode())
        h.update(str(frames.shape).encode())
        h.update(np.ascontiguousarray(frames).tobytes())
        return h.hexdigest()

    def judge(self, frames: np.ndarray) -> CriticAnswer:
        """The critic's score and reason for a clip [T,H,W,3] uint8; from the cache when
        these frames were judged with these settings before (the model is not loaded)."""
        # The key is of the clip at its own size: the grid is known once the model is.
        path = self.cache_dir / f"{self.key(frames)}.json"
        if path.is_file():
            cached = json.loads(path.read_text())
            return CriticAnswer(cached["score"], cached["reason"])
        grid = self.loaded().grid
        shown = sample_frames(frames, self.spec.frames, self.spec.max_side, grid)
        texts = self.ask(shown)
        answer = score_answers([parse_answer(t) for t in texts])
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        record = {"score": answer.score, "reason": answer.reason, "answers": texts}
        write_bytes_atomic(path, json.dumps(record, indent=2).encode(), self.cache_dir)
        return answer

    def loaded(self) -> ReasonModel:
        """The model, loaded on the first call."""
        if self._loaded is None:
            self._loaded = self.loader(self.spec)
        return self._loaded

    def ask(self, shown: np.ndarray) -> list[str]:
        """The model's answers to the prompt about frames [N,h,w,3] uint8, one per trial
        (sampled, trial t with torch seed t, so answers repeat)."""
        import torch

        loaded = self.loaded()
        self.asked += 1
        vision = loaded.image_processor(images=list(shown), return_tensors="pt")
        # [N, 3] (t, h, w) patches per picture; merge_size^2 patches make one token.
        tokens = vision["image_grid_thw"].prod(-1) // loaded.image_processor.merge_size**2
        pictures = "".join(_PICTURE.format(pads=_PAD * int(n)) for n in tokens)
        text = _TURN.format(pictures=pictures, prompt=self.prompt)
        inputs = {**loaded.tokenizer(text, return_tensors="pt"), **vision}
        inputs = {k: v.to(loaded.model.device) for k, v in inputs.items()}
        prompt_length = inputs["input_ids"].shape[1]
        answers = []
        for trial in range(self.spec.trials):
            torch.manual_seed(trial)
            with torch.no_grad():
                out = loaded.model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=TEMPERATURE,
                    max_new_tokens=self.max_new_tokens,
                )
            answers.append(
                loaded.tokenizer.decode(out[0, prompt_length:], skip_special_tokens=True)
            )
        return answers


def load_reason_model(spec: CriticSpec) -> ReasonModel:
    """A Cosmos-Reason model, its tokenizer and image processor, by hub id or folder:
    the transformers class its config names (MODEL_CLASSES)."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise InputError(
            f"the critic needs the model extra ({exc}); install it with: pip install -e '.[model]'",
            field="quality.critic.model",
        ) from exc
    kwargs: dict[str, Any] = {} if spec.revision is None else {"revision": spec.revision}
    try:
        config = transformers.AutoConfig.from_pretrained(spec.model, **kwargs)
        name = MODEL_CLASSES.get(config.model_type)
        if name is None:
            raise InputError(
                f"is a {config.model_type!r} model; the critic takes Cosmos-Reason1 "
                f"(qwen2_5_vl) or Cosmos-Reason2 (qwen3_vl)",
                field="quality.critic.model",
            )
        dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
        device = spec.device if spec.device != "auto" else None
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = dtypes.get(spec.dtype) or (torch.bfloat16 if device != "cpu" else torch.float32)
        model = getattr(transformers, name).from_pretrained(spec.model, torch_dtype=dtype, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(spec.model, **kwargs)
        image_processor = transformers.AutoImageProcessor.from_pretrained(spec.model, **kwargs)
    except OSError as exc:
        raise InputError(f"cannot load the critic: {exc}", field="quality.critic.model") from exc
    return ReasonModel(model.to(device).eval(), tokenizer, image_processor)


def make_critic(quality: QualitySpec) -> Critic | None:
    """The spec's critic (loaded on its first cache miss), or None where it sets none."""
    if not quality.enabled or quality.critic is None:
        return None
    return Critic(quality.critic)
