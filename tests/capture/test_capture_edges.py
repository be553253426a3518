"""The edge control of a capture with open background: the sky stays black."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bridge_core.controls.build import build_control_stack
from bridge_core.controls.edge import normal_edges
from bridge_core.datasets.detect import open_dataset
from bridge_core.datasets.types import DEPTH, NORMALS
from bridge_core.spec.models import ControlSpec


def test_no_hit_pixels_are_not_edges_beyond_the_border_of_the_hit_region(
    warehouse_flat: Path,
) -> None:
    """The aisle camera sees past the walls: those pixels hit nothing (depth inf, normals
    zero), and only the one-pixel border of the hit region may be an edge there."""
    (clip,) = open_dataset(warehouse_flat).clips()
    edges = build_control_stack(clip, {"edge": ControlSpec()}).videos["edge"][..., 0] > 0.5
    miss = ~np.isfinite(clip.stack(DEPTH))
    assert miss.mean() > 0.05  # the scene really has open background here
    hit_and_border = np.stack(
        [cv2.dilate((~m).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for m in miss]
    )
    assert not edges[miss & ~hit_and_border].any()
    # The hit region still has its edges, and the border of the hit region is one.
    assert edges[~miss].mean() > 0.05
    border = ~miss & (
        np.stack([cv2.erode((~m).astype(np.uint8), np.ones((3, 3), np.uint8)) for m in miss]) == 0
    )
    assert edges[border].mean() > 0.9
    # Zero normals (no hit) never make creases, not even with each other.
    assert not normal_edges(clip.stack(NORMALS))[miss].any()
