"""bridge_core's public surface: pinned, importable, and light to import."""

from __future__ import annotations

import subprocess
import sys

import bridge_core

EXPECTED = {
    "BridgeError",
    "CONTROL_NAMES",
    "Camera",
    "CameraParams",
    "Clip",
    "ControlStack",
    "Dataset",
    "DatasetError",
    "Frame",
    "InputError",
    "JobSpec",
    "ModelRequirements",
    "RaySpec",
    "SamplingSettings",
    "Segmentation",
    "SpecError",
    "TransferModel",
    "UnsupportedFeatureError",
    "build_control_stack",
    "load_job_spec",
    "load_job_specs",
    "normalise_weights",
    "open_dataset",
    "parse_job_spec",
    "resolve_model",
    "run_job",
    "run_job_on_ray",
    "weight_map",
}


def test_public_names_are_pinned():
    assert set(bridge_core.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(bridge_core, name) is not None, name


def test_import_loads_neither_torch_nor_the_run_loop():
    code = (
        "import sys, bridge_core; "
        "print('torch' in sys.modules, 'bridge_core.run.loop' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
