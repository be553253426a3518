"""The VLM critic's plumbing on a tiny random Qwen2.5-VL (Cosmos-Reason1's class) built
from a config, no network: frames sampled to the critic's input, the prompt and the
pictures it is shown, answers parsed into a score and a reason, the threshold, and the
cache (the model asked, and loaded, only on a miss). Not its judgement: it is random."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bridge_core.quality.critic import (
    CRITIC_PROMPT,
    Answer,
    Critic,
    ReasonModel,
    parse_answer,
    sample_frames,
    score_answers,
)
from bridge_core.quality.gate import ClipJudge, CriticAnswer, judge
from bridge_core.spec.models import CriticSpec, QualitySpec

transformers = pytest.importorskip("transformers", reason="the model extra is not installed")
torch = pytest.importorskip("torch")

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
WORDS = ["<unk>", "<anomaly>", "</anomaly>", "<reason>", "</reason>", "Yes", "No", "shelf"]


class TinyReason:
    """Builds a tiny random Qwen2_5_VLForConditionalGeneration with a word-level tokenizer
    that knows Qwen's special tokens; records what the critic passes it."""

    def __init__(self):
        self.loads = 0
        self.texts: list[str] = []
        self.grids: list[list[list[int]]] = []

    def __call__(self, spec: CriticSpec) -> ReasonModel:
        from tokenizers import Tokenizer, models, pre_tokenizers

        self.loads += 1
        vocab = {w: i for i, w in enumerate(WORDS + SPECIAL)}
        words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_object=words,
            unk_token="<unk>",
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            additional_special_tokens=SPECIAL,
        )
        ids = {t: vocab[t] for t in SPECIAL}
        text = {
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        }
        config = transformers.Qwen2_5_VLConfig(
            text_config={
                "vocab_size": len(vocab),
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
                **text,
            },
            vision_config={
                "depth": 1,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 32,
                "fullatt_block_indexes": [0],
            },
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            **text,
        )
        torch.manual_seed(0)
        model = transformers.Qwen2_5_VLForConditionalGeneration(config).eval()
        recorder = self

        class Recording(type(tokenizer)):
            def __call__(self, text, **kwargs):
                recorder.texts.append(text)
                return super().__call__(text, **kwargs)

        tokenizer.__class__ = Recording
        processor = transformers.Qwen2VLImageProcessor()
        original = processor.__class__.__call__

        def record_grid(images, **kwargs):
            out = original(processor, images, **kwargs)
            self.grids.append(out["image_grid_thw"].tolist())
            return out

        processor.__call__ = record_grid
        return ReasonModel(model, tokenizer, _Calling(processor, record_grid))


class _Calling:
    """An image processor whose call is recorded, its attributes those of the original."""

    def __init__(self, processor, call):
        self._processor, self._call = processor, call

    def __call__(self, images, **kwargs):
        return self._call(images, **kwargs)

    def __getattr__(self, name):
        return getattr(self._processor, name)


def _clip(frames: int = 9, size: tuple[int, int] = (96, 128), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)


def test_frames_are_sampled_evenly_to_the_critics_grid() -> None:
    clip = _clip(9, (96, 128))
    clip[:] = (20 * np.arange(9, dtype=np.uint8))[:, None, None, None]  # each frame marked
    shown = sample_frames(clip, 4, 112, 28)
    assert shown.shape == (4, 84, 112, 3)  # longest side 112, both multiples of 28
    assert shown[:, 0, 0, 0].tolist() == [0, 60, 100, 160]  # frames 0, 3, 5, 8
    small = sample_frames(clip, 20, 448, 28)
    assert len(small) == 9 and small.shape[1:3] == (84, 140)  # never upscaled past the grid
    assert sample_frames(clip[:1], 4, 448, 32).shape[0] == 1


@pytest.mark.parametrize(
    ("text", "anomaly", "reason"),
    [
        ("<reason>The shelf melts.</reason> <anomaly>Yes</anomaly>", True, "The shelf melts."),
        ("Nothing odd here. <anomaly> no </anomaly>", False, "Nothing odd here."),
        ("<anomaly>No</anomaly> then <anomaly>YES</anomaly>", True, ""),
        ("I cannot tell.", None, "I cannot tell."),
    ],
)
def test_answers_are_parsed(text, anomaly, reason) -> None:
    assert parse_answer(text) == Answer(anomaly, reason)


def test_the_score_is_the_share_of_trials_without_an_anomaly() -> None:
    answers = [
        Answer(False, "ok"),
        Answer(True, "a box floats"),
        Answer(None, "?"),
        Answer(False, ""),
    ]
    assert score_answers(answers) == CriticAnswer(0.5, "a box floats")
    assert score_answers([Answer(None, "gibberish")]).score == 0.0


def test_the_tiny_critic_is_asked_once_per_clip_and_its_answers_scored(tmp_path) -> None:
    spec = CriticSpec(model="tiny", trials=3, frames=4, max_side=112)
    loader = TinyReason()
    critic = Critic(spec, loader, tmp_path, max_new_tokens=8)
    clip = _clip()
    answer = critic.judge(clip)

    # Four pictures of 84x112 (6x8 patches, merged 2x2: 12 tokens each) and our prompt.
    assert loader.grids == [[[1, 6, 8]] * 4]
    (text,) = loader.texts
    assert text.count("<|vision_start|>") == 4 and text.count("<|image_pad|>") == 4 * 12
    assert CRITIC_PROMPT in text and text.endswith("<|im_start|>assistant\n")
    # The score and reason are what the trials' decoded answers parse to.
    (cached,) = tmp_path.glob("*.json")
    record = json.loads(cached.read_text())
    assert len(record["answers"]) == 3
    assert answer == score_answers([parse_answer(t) for t in record["answers"]])
    assert 0.0 <= answer.score <= 1.0

    # The same frames again: from the cache, in this critic and in a new one, which
    # does not even load the model.
    assert critic.judge(clip) == answer and critic.asked == 1
    other_loader = TinyReason()
    assert Critic(spec, other_loader, tmp_path, max_new_tokens=8).judge(clip) == answer
    assert other_loader.loads == 0
    # Other frames, or another prompt: asked again.
    critic.judge(_clip(seed=1))
    assert critic.asked == 2
    reprompted = Critic(
        spec.model_copy(update={"prompt": "Anything odd?"}), loader, tmp_path, max_new_tokens=8
    )
    reprompted.judge(clip)
    assert reprompted.asked == 1


class _Says:
    def __init__(self, score: float, reason: str):
        self.answer = CriticAnswer(score, reason)

    def judge(self, frames: np.ndarray) -> CriticAnswer:
        return self.answer


def test_a_clip_below_the_critics_threshold_is_rejected_with_its_reason() -> None:
    quality = QualitySpec(enabled=True, critic=CriticSpec(min_score=0.5))
    clip = _clip()
    low = ClipJudge(quality, None, None, _Says(1 / 3, "the forklift melts")).judge(clip)
    assert low.scores["critic"] == pytest.approx(1 / 3)
    assert low.verdict.reasons == ["critic 0.333 < 0.5 (the forklift melts)"]
    high = ClipJudge(quality, None, None, _Says(2 / 3, "")).judge(clip)
    assert high.verdict.accepted
    # Without a critic in the spec its score is not checked.
    assert judge({"critic": 0.0}, QualitySpec(enabled=True)).accepted
