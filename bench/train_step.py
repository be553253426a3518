"""Milliseconds per training step of the default model's phases, on random clips.

    python bench/train_step.py [--device cuda] [--batch 32] [--size 128] [--profile]

Prints ms/step for the VAE, base and branch phases (after warm-up steps), and with
--profile the ten most expensive operators of a base step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from transfer_model.cosmos import configs, training
from transfer_model.cosmos.prompts import HashTextEncoder

CONTROLS = ("edge", "blur", "depth", "seg")


def random_clips(size: int, scenes: int = 8, conditions: int = 4) -> training.ClipSet:
    rng = np.random.default_rng(0)
    encoder = HashTextEncoder(configs.MODEL_PRESETS["default"].text_embed_dim)
    shape = (9, size, size, 3)
    return training.ClipSet(
        targets=rng.integers(0, 256, (scenes * conditions, *shape), dtype=np.uint8),
        controls={c: rng.integers(0, 256, (scenes, *shape), dtype=np.uint8) for c in CONTROLS},
        scene=np.repeat(np.arange(scenes), conditions),
        prompt=np.tile(np.arange(conditions), scenes),
        prompt_embeds=encoder.encode([f"condition {i}" for i in range(conditions)], 128),
        null_embed=encoder.encode(["nothing"], 128)[0],
    )


def timed(phase: str, run, steps: int, device: torch.device) -> None:
    run(2)  # warm-up: allocator, kernels
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"{phase:9s} {1000 * (time.perf_counter() - start) / steps:7.1f} ms/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    preset = configs.MODEL_PRESETS["default"]
    clips = random_clips(args.size)
    vae = configs.build_vae(preset)
    transformer = configs.build_transformer(preset)
    branches = {c: configs.build_branch(preset, zero_init=False) for c in CONTROLS}
    history = training.History()

    def schedule(steps: int) -> training.Schedule:
        return training.Schedule(
            vae_steps=steps, base_steps=steps, branch_steps=steps, batch=args.batch
        )

    timed(
        "vae",
        lambda n: training.train_vae(vae, clips, schedule(n), device, history),
        args.steps,
        device,
    )
    encoded = training.encode_set(vae, clips, device)

    def base(n: int) -> None:
        training.train_base(transformer, encoded, clips, schedule(n), device, history, dtype=dtype)

    def branch(n: int) -> None:
        training.train_branches(
            transformer, branches, encoded, clips, schedule(n), device, history, dtype=dtype
        )

    timed("base", base, args.steps, device)
    timed("branches", branch, args.steps, device)
    if args.profile:
        with torch.profiler.profile() as prof:
            base(5)
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
