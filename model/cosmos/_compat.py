"""A stand-in for the one torchvision call diffusers' Cosmos models make.

CosmosTransformer3DModel and CosmosControlNetModel resize their padding mask with
``torchvision.transforms.functional.resize(..., NEAREST)`` and nothing else from
torchvision; without torchvision installed that name is undefined and every forward
fails. PyPI's torchvision does not import beside the CPU build of torch this project
uses on machines without a GPU, so, only when torchvision is missing, the two
modules get a nearest-neighbour resize built on ``torch.nn.functional.interpolate``,
which is what torchvision itself runs for a tensor with NEAREST.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import torch
import torch.nn.functional as F

_COSMOS_MODULES = (
    "diffusers.models.transformers.transformer_cosmos",
    "diffusers.models.controlnets.controlnet_cosmos",
)


def _nearest_resize(
    image: torch.Tensor, size: list[int], interpolation: object = None
) -> torch.Tensor:
    """[B,C,H,W] -> [B,C,size[0],size[1]], nearest neighbour (``interpolation`` is NEAREST)."""
    return F.interpolate(image, size=size, mode="nearest")


_TRANSFORMS = SimpleNamespace(
    functional=SimpleNamespace(resize=_nearest_resize),
    InterpolationMode=SimpleNamespace(NEAREST="nearest"),
)


def ensure_padding_mask_resize() -> None:
    """Give diffusers' Cosmos modules a ``transforms`` when torchvision is not installed."""
    if importlib.util.find_spec("torchvision") is not None:
        return
    for name in _COSMOS_MODULES:
        module = importlib.import_module(name)
        if not hasattr(module, "transforms"):
            module.transforms = _TRANSFORMS
