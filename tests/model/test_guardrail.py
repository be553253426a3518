"""The guardrail policy: NVIDIA weights are checked, the project's own pass through."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import SETTINGS, stack

from transfer_model import (
    CosmosTransferModel,
    GuardrailBlockedError,
    PassThroughChecker,
    checker_for,
)


def test_project_models_pass_through() -> None:
    assert isinstance(checker_for("project"), PassThroughChecker)


def test_nvidia_weights_need_the_guardrail_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cosmos_guardrail", None)
    with pytest.raises(ImportError, match=r"pip install 'cosmos-transfer-bridge\[guardrail\]'"):
        checker_for("nvidia")


class _Blocks(PassThroughChecker):
    def __init__(self, text: bool, video: bool) -> None:
        self.text, self.video = text, video

    def check_text_safety(self, prompt: str) -> bool:
        return not self.text

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray | None:
        return None if self.video else frames


@pytest.mark.parametrize(
    ("text", "video", "match"), [(True, False, "prompt"), (False, True, "video")]
)
def test_rejections_raise(embeds, text, video, match) -> None:
    model = CosmosTransferModel.from_preset("tiny", ("edge",), safety_checker=_Blocks(text, video))
    prompt = "a street" if text else embeds[0]
    with pytest.raises(GuardrailBlockedError, match=match):
        model.generate(stack({"edge": 1.0}, 5), prompt, embeds[1], 0, SETTINGS)
