"""``python run_worker.py SPEC``: the real run loop in its own process, for the kill tests.

The model is a numpy stand-in (deterministic, no torch to import), so a process starts
in well under a second and can be killed many times in a test.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np

from bridge_core.controls.stack import CONTROL_NAMES, ControlStack
from bridge_core.run.loop import run_job
from bridge_core.run.models import ResolvedModel
from bridge_core.run.protocol import ModelRequirements, SamplingSettings
from bridge_core.spec.load import load_job_spec

# Long enough that kills land inside generation as well as between writes.
GENERATE_SECONDS = 0.05


class NumpyModel:
    """Frames [T,H,W,3] uint8: the weighted controls plus noise from the seed and prompt."""

    requirements = ModelRequirements(
        resolution_multiple=16, frames_per_chunk=5, supported_controls=CONTROL_NAMES
    )

    def generate(
        self,
        controls: ControlStack,
        prompt: str,
        negative_prompt: str | None,
        seed: int,
        settings: SamplingSettings,
    ) -> np.ndarray:
        time.sleep(GENERATE_SECONDS)
        mixed = sum(controls.videos[n] * controls.weights[n][..., None] for n in controls.names)
        salt = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "little")
        rng = np.random.default_rng([seed, salt])
        noise = rng.random(mixed.shape, dtype=np.float32) * 0.3
        return (np.clip(mixed + noise, 0, 1) * 255).astype(np.uint8)


if __name__ == "__main__":
    spec = load_job_spec(sys.argv[1]).spec
    run_job(spec, ResolvedModel(NumpyModel(), "numpy-stand-in"))
