"""The errors transfer_model raises on purpose, in one place.

All are :class:`bridge_core.errors.BridgeError`, so the CLI prints their one line.
"""

from __future__ import annotations

from bridge_core.errors import BridgeError


class TransferModelError(BridgeError):
    """Base class of transfer_model's own errors."""


class ModelAccessError(TransferModelError):
    """Weights could not be fetched: a gated repository, a missing token, offline mode."""


class CheckpointFormatError(TransferModelError):
    """A checkpoint folder holds no safetensors weights (pickle checkpoints are refused)."""


class GuardrailBlockedError(TransferModelError):
    """NVIDIA's guardrail rejected a prompt or a generated video."""
