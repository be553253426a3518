"""cosmos-transfer-bridge core: datasets, controls, weight maps, job specs, the run loop.

The public surface is the names below; the modules behind them are the implementation.
They are imported on first use, so ``import bridge_core`` stays light (transfer_model
imports the model protocol from here without loading the run loop).
"""

from __future__ import annotations

from bridge_core._lazy import lazy_exports

_EXPORTS = {
    # datasets
    "open_dataset": "bridge_core.datasets.detect",
    "Dataset": "bridge_core.datasets.types",
    "Camera": "bridge_core.datasets.types",
    "Clip": "bridge_core.datasets.types",
    "Frame": "bridge_core.datasets.types",
    "CameraParams": "bridge_core.datasets.types",
    "Segmentation": "bridge_core.datasets.types",
    # controls and weight maps
    "CONTROL_NAMES": "bridge_core.controls.stack",
    "ControlStack": "bridge_core.controls.stack",
    "build_control_stack": "bridge_core.controls.build",
    "weight_map": "bridge_core.weights.build",
    "normalise_weights": "bridge_core.weights.rules",
    # job specs
    "JobSpec": "bridge_core.spec",
    "load_job_spec": "bridge_core.spec",
    "load_job_specs": "bridge_core.spec",
    "parse_job_spec": "bridge_core.spec",
    # running
    "TransferModel": "bridge_core.run.protocol",
    "ModelRequirements": "bridge_core.run.protocol",
    "SamplingSettings": "bridge_core.run.protocol",
    "resolve_model": "bridge_core.run.models",
    "run_job": "bridge_core.run.loop",
    "run_job_on_ray": "bridge_core.run.distributed",
    "RaySpec": "bridge_core.spec.models",
    # errors
    "BridgeError": "bridge_core.errors",
    "InputError": "bridge_core.errors",
    "DatasetError": "bridge_core.errors",
    "SpecError": "bridge_core.errors",
    "UnsupportedFeatureError": "bridge_core.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
