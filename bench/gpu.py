"""Seconds per denoising step and per chunk, and peak GPU memory per memory mode, of a
random model of a preset's size; by default Cosmos-Transfer2.5-2B's ("2b": 93 frames,
1280x704, bf16 on CUDA).

For 1 and 4 branches, at 35 steps with guidance 3.0 and at 4 steps without, it times one
whole chunk (encode, steps, decode) of ``--frames`` frames, and the same chunk at 1 step:
seconds per step = (t(N steps) - t(1 step)) / (N - 1), so encode and decode drop out.
Then the step time of each attention kernel asked for (--attention), and, for every
memory mode of transfer_model.cosmos.memory, the peak GPU memory of one 1-step chunk
with the most branches. Each figure is one run after one warm-up, not a
best of several; the weights are random (the same architecture and so the same cost as
the checkpoint's), the prompts random embeddings: no text encoder, no network.

At the 2B size the full run is long (tens of minutes: 35 guided steps with 4 branches
alone are several); ``--max-measured-steps K`` times K steps instead and prints the
N-step chunk as an estimate, 1-step chunk + (N - 1) x seconds per step, marked so.

    python bench/gpu.py                       # the 2B model on the GPU
    python bench/gpu.py --preset tiny --frames 5 --size 64x64 --device cpu   # CI, seconds
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

# bench/ is no package; the repository root on the path makes bench.model importable
# when this file runs as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.model import FusionClock
from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.run.protocol import SamplingSettings
from transfer_model import ATTENTION_BACKENDS, MODEL_PRESETS, CosmosTransferModel
from transfer_model.cosmos.memory import MEMORY_POLICIES

BENCH = Path(__file__).resolve().parent
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_size(text: str) -> tuple[int, int]:
    """'1280x704' -> (width, height)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        models = [line for line in lines if line.startswith("model name")]
        name = models[0].partition(":")[2].strip() if models else name
    return f"CPU {name}, {torch.get_num_threads()} torch threads"


def build(preset: str, branches: int, device: torch.device, dtype: torch.dtype):
    """A random model with ``branches`` branches, built on ``device`` (no host copy of the
    2B weights first) and cast to ``dtype``, as bench/model.py casts it."""
    with device:
        model = CosmosTransferModel.from_preset(
            preset, CONTROL_NAMES[:branches], zero_init_branches=False, device=device
        )
    if dtype != torch.float32:
        for module in (model.transformer, model.vae, *model.branches.values()):
            module.to(dtype)
    return model


def controls_for(branches: int, frames: int, width: int, height: int) -> ControlStack:
    """Random control videos (one array shared by every branch) and equal weights."""
    names = CONTROL_NAMES[:branches]
    video = np.random.default_rng(0).random((frames, height, width, 3), dtype=np.float32)
    weights = np.full((frames, height, width), 1 / branches, np.float32)
    return ControlStack(videos=dict.fromkeys(names, video), weights=dict.fromkeys(names, weights))


class Clip:
    """One chunk's inputs; ``run`` times a generation of it."""

    def __init__(self, model: CosmosTransferModel, controls: ControlStack, tokens: int, dim: int):
        self.model, self.controls = model, controls
        gen = torch.Generator().manual_seed(1)
        self.prompt = torch.randn(1, tokens, dim, generator=gen)
        self.negative = torch.randn(1, tokens, dim, generator=gen)

    def run(self, steps: int, guidance: float) -> tuple[float, float]:
        """(seconds, of which in the fusion functions) of one generation."""
        negative = self.negative if guidance > 0 else None
        settings = SamplingSettings(num_steps=steps, guidance=guidance)
        with FusionClock() as clock:
            start = time.perf_counter()
            self.model.generate(self.controls, self.prompt, negative, 0, settings)
            if self.model.device.type == "cuda":
                torch.cuda.synchronize(self.model.device)
            return time.perf_counter() - start, clock.seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), default="2b")
    parser.add_argument("--frames", type=int, default=93, help="frames of the chunk, 1 + 4k")
    parser.add_argument("--size", default="1280x704", help="WIDTHxHEIGHT in pixels")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default: bf16 on CUDA, else fp32")
    parser.add_argument("--branches", default="1,4", help="branch counts, comma-separated")
    parser.add_argument("--guided-steps", type=int, default=35)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--fast-steps", type=int, default=4, help="steps of the unguided run")
    parser.add_argument(
        "--max-measured-steps",
        type=int,
        help="time at most this many steps (>= 2); estimate the rest",
    )
    parser.add_argument("--memory-modes", default=",".join(MEMORY_POLICIES))
    parser.add_argument(
        "--attention",
        help="attention kernels to compare, comma-separated, from "
        f"{', '.join(ATTENTION_BACKENDS)}; default: auto,sdpa_flash,sdpa_cudnn on a GPU, "
        "auto on a CPU",
    )
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument(
        "--others",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="then run bench/run.py (the bridge's own time) and bench/capture.py (warp on "
        "this device); default: on a GPU",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads; default 1 on a CPU device (toy sizes gain nothing from more, and "
        "on a busy machine spinning threads multiply the time), torch's own on a GPU",
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.others is None:
        args.others = device.type == "cuda"
    if args.attention is None:
        args.attention = "auto,sdpa_flash,sdpa_cudnn" if device.type == "cuda" else "auto"
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("CUDA is not available here; pass --device cpu (and a small --preset)")
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    if (args.frames - 1) % 4:
        parser.error(f"--frames must be 1 + 4k, got {args.frames}")
    if min(args.guided_steps, args.fast_steps, args.max_measured_steps or 2) < 2:
        parser.error("step counts must be at least 2 (a step is the difference to 1 step)")
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    width, height = parse_size(args.size)
    counts = sorted({int(b) for b in args.branches.split(",")})
    modes = [m for m in args.memory_modes.split(",") if m]
    unknown = set(modes) - set(MEMORY_POLICIES)
    if unknown or not 1 <= counts[0] <= counts[-1] <= len(CONTROL_NAMES):
        parser.error(f"memory modes from {MEMORY_POLICIES}, branches from 1 to 4")

    started = time.perf_counter()
    model = build(args.preset, counts[-1], device, dtype)
    prompt = (args.prompt_tokens, MODEL_PRESETS[args.preset].prompt_embed_dim)
    model.frames_per_chunk = args.frames  # the clip is one chunk
    sizes = {
        "transformer": sum(p.numel() for p in model.transformer.parameters()),
        "branch": sum(p.numel() for p in next(iter(model.branches.values())).parameters()),
        "vae": sum(p.numel() for p in model.vae.parameters()),
    }
    print(
        f"bench/gpu.py: preset={args.preset} (random weights) frames={args.frames} "
        f"size={width}x{height} dtype={str(dtype).removeprefix('torch.')} device={device} "
        f"({device_name(device)}); torch {torch.__version__}"
    )
    print(
        f"parameters: transformer {sizes['transformer']:,}, per branch {sizes['branch']:,}, "
        f"VAE {sizes['vae']:,}; "
        f"built in {time.perf_counter() - started:.1f} s"
    )

    results: dict = {"device": device_name(device), "timings": [], "memory": []}
    for branches in counts:
        # The model has counts[-1] branches; a ControlStack with fewer runs only those.
        clip = Clip(model, controls_for(branches, args.frames, width, height), *prompt)
        clip.run(1, 0.0)  # warm-up: kernels, allocator
        for steps, guidance in ((args.guided_steps, args.guidance), (args.fast_steps, 0.0)):
            measured = min(steps, args.max_measured_steps or steps)
            one, one_fusion = clip.run(1, guidance)
            many, many_fusion = clip.run(measured, guidance)
            per_step = (many - one) / (measured - 1)
            share = (many_fusion - one_fusion) / (measured - 1) / per_step if per_step > 0 else 0
            chunk = many if measured == steps else one + (steps - 1) * per_step
            how = "measured" if measured == steps else f"estimated from {measured} steps"
            results["timings"].append(
                {
                    "branches": branches,
                    "steps": steps,
                    "guidance": guidance,
                    "s_per_step": per_step,
                    "s_per_chunk": chunk,
                    "chunk_measured": measured == steps,
                    "s_one_step_chunk": one,
                }
            )
            print(
                f"branches={branches} steps={steps:2d} guidance={guidance:g}: "
                f"{per_step:8.3f} s/step  {chunk:8.2f} s/chunk ({how}; "
                f"1-step chunk {one:.2f} s; fusion {share:.2%} of a step)"
            )

    # The attention kernels, one at a time, at the fastest setting (most branches, the
    # unguided steps): the step time each gives.
    clip = Clip(model, controls_for(counts[-1], args.frames, width, height), *prompt)
    for name in [a for a in args.attention.split(",") if a]:
        try:
            model.set_attention(name)
            one, _ = clip.run(1, 0.0)
            many, _ = clip.run(args.fast_steps, 0.0)
        except (RuntimeError, ValueError) as exc:
            print(f"attention={name:<14} unavailable here ({str(exc).splitlines()[0][:90]})")
            continue
        per_step = (many - one) / (args.fast_steps - 1)
        results.setdefault("attention", []).append({"attention": name, "s_per_step": per_step})
        print(
            f"attention={name:<14} {per_step:8.3f} s/step "
            f"({counts[-1]} branches, {args.fast_steps} steps, no guidance)"
        )
    model.set_attention("auto")

    # Peak memory per mode: the same modules under each placement; group offloading
    # hooks the models for good, so it goes last.
    clip = Clip(model, controls_for(counts[-1], args.frames, width, height), *prompt)
    for mode in sorted(modes, key=lambda m: m == "group_offload"):
        placed = CosmosTransferModel(
            model.transformer,
            model.vae,
            model.branches,
            model.scheduler,
            frames_per_chunk=args.frames,
            origin="project",
            device=device,
            memory=mode,
        )
        clip.model = placed
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        seconds, _ = clip.run(1, 0.0)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        if mode == "vae_tiling":
            model.vae.disable_tiling()
        results["memory"].append({"mode": mode, "peak_mib": peak, "seconds": seconds})
        shown = f"{peak:9.0f} MiB" if peak is not None else f"n/a on {device.type}"
        print(
            f"memory={mode:<13} peak allocated GPU memory {shown} "
            f"(1-step chunk, {counts[-1]} branches, {seconds:.2f} s)"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process memory {rss:.0f} MiB; total {time.perf_counter() - started:.1f} s")
    if args.others:
        fastest = min(results["timings"], key=lambda t: t["s_per_chunk"])
        model_ms = 1000 * fastest["s_per_chunk"] / args.frames
        del model, placed, clip
        if device.type == "cuda":
            torch.cuda.empty_cache()
        # The bridge's time the model does not hide (bench/run.py, the model standing in
        # at the fastest setting's ms per frame), and headless capture with warp on the GPU.
        for script, extra in (
            ("run.py", ["--gpu-ms", f"{model_ms:.1f}"]),
            ("capture.py", ["--device", str(device), "--resolution", f"{width}x{height}"]),
        ):
            print(f"--- bench/{script} {' '.join(extra)}", flush=True)
            subprocess.run([sys.executable, str(BENCH / script), *extra], check=False)
    return results


if __name__ == "__main__":
    main()
