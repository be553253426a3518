"""One branch with a map of ones reproduces diffusers' Cosmos2_5_TransferPipeline exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HEIGHT, SETTINGS, WIDTH, control_video, stack
from diffusers import Cosmos2_5_TransferPipeline

from transfer_model import Branch, PassThroughChecker, flow_scheduler, sample


class _Checker(PassThroughChecker):
    """The pipeline moves its checker to a device."""

    def to(self, *args: object, **kwargs: object) -> _Checker:
        return self


def _pipeline(tiny) -> Cosmos2_5_TransferPipeline:
    pipe = Cosmos2_5_TransferPipeline(
        text_encoder=None,
        tokenizer=None,
        transformer=tiny.transformer,
        vae=tiny.vae,
        scheduler=flow_scheduler(),
        controlnet=tiny.branches["edge"],
        safety_checker=_Checker(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# 5 frames: one chunk; 9 frames: two chunks of 5 sharing one conditioning frame.
@pytest.mark.parametrize("frames", [5, 9])
def test_matches_diffusers_pipeline(tiny, embeds, frames: int) -> None:
    prompt, negative = embeds
    video = control_video(frames)
    kwargs = dict(
        controls=video[None],
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        height=HEIGHT,
        width=WIDTH,
        num_frames_per_chunk=tiny.frames_per_chunk,
        num_inference_steps=SETTINGS.num_steps,
        guidance_scale=SETTINGS.guidance,
        num_ar_conditional_frames=SETTINGS.num_conditional_frames,
    )
    pipe = _pipeline(tiny)
    ref_frames = pipe(**kwargs, generator=torch.Generator().manual_seed(7), output_type="np")
    ref_latents = pipe(**kwargs, generator=torch.Generator().manual_seed(7), output_type="latent")

    ours = sample(
        tiny.transformer,
        tiny.vae,
        flow_scheduler(),
        [
            Branch(
                "edge",
                tiny.branches["edge"],
                torch.from_numpy(video).permute(3, 0, 1, 2)[None] * 2 - 1,
                torch.ones(frames, HEIGHT, WIDTH),
            )
        ],
        prompt,
        negative,
        torch.Generator().manual_seed(7),
        num_steps=SETTINGS.num_steps,
        guidance=SETTINGS.guidance,
        frames_per_chunk=tiny.frames_per_chunk,
        num_cond_frames=SETTINGS.num_conditional_frames,
    )
    assert ours.latents.shape == ref_latents.frames.shape
    assert (ours.latents - ref_latents.frames).abs().max().item() <= 1e-5

    frames_out = tiny.generate(stack({"edge": 1.0}, frames), prompt, negative, 7, SETTINGS)
    assert frames_out.shape == (frames, HEIGHT, WIDTH, 3) and frames_out.dtype == np.uint8
    assert np.abs(frames_out / 255.0 - ref_frames.frames[0]).max() <= 1e-5
