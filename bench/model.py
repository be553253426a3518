"""Seconds per denoising step with 1, 2 and 4 control branches on a random preset model.

Also prints the share of a step spent resizing weight maps and fusing residuals, and
peak memory, and on a CPU the time of one generation against diffusers'
Cosmos2_5_TransferPipeline on the same modules. Usage: python bench/model.py
[--preset small|tiny] [--steps N]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler

from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.run.protocol import SamplingSettings
from transfer_model import MODEL_PRESETS, CosmosTransferModel
from transfer_model.cosmos import fusion


class FusionClock:
    """Adds up the time spent in the fusion functions while installed."""

    names = ("weights_to_tokens", "normalise", "accumulate")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.originals = {name: getattr(fusion, name) for name in self.names}

    def _timed(self, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return wrapper

    def __enter__(self) -> FusionClock:
        for name, fn in self.originals.items():
            setattr(fusion, name, self._timed(fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self.originals.items():
            setattr(fusion, name, fn)


def prompt_width(model: CosmosTransferModel) -> int:
    """Width of the prompt embeddings the transformer takes (Cosmos-Reason's concatenated
    layers where it projects them down, as the real-size model does)."""
    config = model.transformer.config
    if config.get("use_crossattn_projection"):
        return config.crossattn_proj_in_channels
    return config.text_embed_dim


def run(model: CosmosTransferModel, branches: int, steps: int, size: int, device: str) -> tuple:
    """(seconds per step, fusion share of a step) over one chunk, VAE time taken out."""
    frames = model.frames_per_chunk
    names = CONTROL_NAMES[:branches]
    rng = np.random.default_rng(0)
    controls = ControlStack(
        videos={n: rng.random((frames, size, size, 3), dtype=np.float32) for n in names},
        weights={n: np.full((frames, size, size), 1 / branches, np.float32) for n in names},
    )
    dim = prompt_width(model)
    prompt, negative = torch.randn(1, 32, dim), torch.randn(1, 32, dim)
    timings = {}
    for n in (1, 1 + steps):
        # Best of three: the least disturbed run; the step cost is the difference
        # between a 1-step and a (1 + steps)-step generation, so the VAE drops out.
        runs = []
        for _ in range(3):
            with FusionClock() as clock:
                start = time.perf_counter()
                model.generate(controls, prompt, negative, 0, SamplingSettings(num_steps=n))
                if device == "cuda":
                    torch.cuda.synchronize()
                runs.append((time.perf_counter() - start, clock.seconds))
        timings[n] = min(runs)
    per_step = (timings[1 + steps][0] - timings[1][0]) / steps
    fusion_per_step = (timings[1 + steps][1] - timings[1][1]) / steps
    return per_step, fusion_per_step / per_step


def versus_diffusers(
    model: CosmosTransferModel, size: int, steps: int, repeats: int
) -> tuple[float, float]:
    """(ours, diffusers') best-of-``repeats`` seconds for the same generation: one branch
    (edge) with a uniform map of ones, guidance 3, diffusers' Cosmos2_5_TransferPipeline
    on the very same modules, prompt embeddings passed to both."""
    from diffusers import Cosmos2_5_TransferPipeline

    from transfer_model import PassThroughChecker

    class Checker(PassThroughChecker):
        def to(self, *args: object, **kwargs: object) -> Checker:  # the pipeline moves it
            return self

    frames = model.frames_per_chunk
    rng = np.random.default_rng(0)
    video = rng.random((frames, size, size, 3), dtype=np.float32)
    controls = ControlStack(
        videos={"edge": video}, weights={"edge": np.ones((frames, size, size), np.float32)}
    )
    dim = prompt_width(model)
    prompt, negative = torch.randn(1, 32, dim), torch.randn(1, 32, dim)
    pipe = Cosmos2_5_TransferPipeline(
        text_encoder=None,
        tokenizer=None,
        transformer=model.transformer,
        vae=model.vae,
        scheduler=UniPCMultistepScheduler.from_config(model.scheduler.config),
        controlnet=model.branches["edge"],
        safety_checker=Checker(),
    )
    pipe.set_progress_bar_config(disable=True)
    settings = SamplingSettings(num_steps=steps, guidance=3.0)

    def ours() -> None:
        model.generate(controls, prompt, negative, 0, settings)

    def theirs() -> None:
        pipe(
            controls=video[None],
            prompt_embeds=prompt,
            negative_prompt_embeds=negative,
            height=size,
            width=size,
            num_frames_per_chunk=frames,
            num_inference_steps=steps,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        )

    def best(fn: Callable[[], None]) -> float:
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return min(runs)

    return best(ours), best(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), default="small")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="square resolution in pixels")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = CosmosTransferModel.from_preset(
        args.preset, CONTROL_NAMES, zero_init_branches=False, device=device
    )
    if device == "cuda":
        for module in (model.transformer, model.vae, *model.branches.values()):
            module.to(torch.bfloat16)
    dtype = model.transformer.dtype
    print(
        f"preset={args.preset} device={device} dtype={dtype} size={args.size} "
        f"frames/chunk={model.frames_per_chunk} threads={args.threads}"
    )
    for branches in (1, 2, 4):
        run(model, branches, 1, args.size, device)  # warm-up
        per_step, share = run(model, branches, args.steps, args.size, device)
        print(f"branches={branches}  {per_step * 1e3:8.1f} ms/step  fusion {share:6.2%} of a step")
    if device == "cpu":
        ours, theirs = versus_diffusers(model, args.size, steps=8, repeats=5)
        print(
            f"one branch, uniform map, {model.frames_per_chunk} frames, 8 steps, guidance 3, "
            f"best of 5: ours {ours:.2f} s, diffusers' Cosmos2_5_TransferPipeline "
            f"{theirs:.2f} s: ours takes {ours / theirs:.2f}x its time"
        )
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(
        f"peak process memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
