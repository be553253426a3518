"""The semantic classes of a USD stage, for the panel's per-class weight rules."""

from __future__ import annotations

from typing import Any

from bridge_core.capture.scene import own_labels


def semantic_classes(stage: Any) -> list[str]:
    """Every ``class`` label authored on the stage, sorted.

    Read as Replicator reads them: the UsdSemantics LabelsAPI
    (``semantics:labels:class``) and the legacy Semantics schema
    (``semantic:<name>:params:semanticType = "class"``); inactive and abstract prims
    are skipped, as the renderer skips them.
    """
    labels: set[str] = set()
    for prim in stage.Traverse():
        labels.update(label for label in own_labels(prim) if label)
    return sorted(labels)
