"""Capture-time augmentation without omni: what the Kit extension's writer and panel wrap.

- :class:`LiveAugmenter`: Replicator ``write(data)`` dicts -> BasicWriter ground truth,
  clips handed to the run loop on a worker thread (augmenter.py, data.py).
- :func:`live_spec`: the job spec from the writer's parameters (spec.py).
- :class:`PanelState`: the panel's job spec and its setters (panel_state.py).
- :class:`ModelCache`, :func:`preview_frame`, :func:`semantic_classes`: the panel's
  model, before/after preview and stage classes (models.py, preview.py, stage.py).

Submodules are imported on first use, so the Kit extension loads without reading pxr or
the run loop until it needs them.
"""

from __future__ import annotations

from bridge_core._lazy import lazy_exports

_EXPORTS = {
    "ANNOTATORS": "bridge_core.live.data",
    "LiveAugmenter": "bridge_core.live.augmenter",
    "LiveResult": "bridge_core.live.augmenter",
    "LiveStatus": "bridge_core.live.augmenter",
    "ModelCache": "bridge_core.live.models",
    "PanelState": "bridge_core.live.panel_state",
    "Preview": "bridge_core.live.preview",
    "live_spec": "bridge_core.live.spec",
    "parse_data": "bridge_core.live.data",
    "preview_frame": "bridge_core.live.preview",
    "rgba_array": "bridge_core.live.preview",
    "semantic_classes": "bridge_core.live.stage",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
