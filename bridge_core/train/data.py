"""Training data for the default model: procedural scenes -> capture controls + Cycles targets.

Per scene (one layout seed) a folder holds the USD stage, the headless capture of its
camera (a BasicWriter dataset, exactly what users give the run loop) and the Cycles
renders under each condition. ``pack_clips`` turns finished scene folders into one
compressed array file the trainer reads; grey controls are stored with one channel.

Layout of a work folder::

    scenes/<seed>/scene.usda
    scenes/<seed>/capture/          BasicWriter dataset (rgb, depth, semantic, normals, ...)
    scenes/<seed>/cycles/<cond>/    rgb_NNNN.png, the training targets
    scenes/<seed>/done              written last: the scene is complete
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bridge_core.controls.stack import CONTROL_NAMES

FRAMES = 9  # one chunk of the default model (1 + 4k)
GREY_CONTROLS = ("depth", "edge")
# Layout seeds from here on are never trained on: the fidelity benchmark's scenes.
HELD_OUT_SEED = 10_000


def scene_dir(workdir: Path, seed: int) -> Path:
    return workdir / "scenes" / f"{seed:05d}"


def capture_layout(workdir: Path, seed: int, size: tuple[int, int]) -> Path:
    """Write and capture one layout (no renders) unless that is done; its capture folder.
    What distillation needs of a scene: the controls, not the targets."""
    from bridge_core.capture.capture import capture_scene
    from bridge_core.trainset.layouts import CAMERA, write_layout

    folder = scene_dir(workdir, seed)
    if not ((folder / "done").exists() or (folder / "captured").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        stage = folder / "scene.usda"
        write_layout(stage, seed, FRAMES)
        capture_scene(stage, [CAMERA], folder / "capture", resolution=size)
        (folder / "captured").write_text("ok\n")
    return folder / "capture"


def build_scene(
    workdir: Path,
    seed: int,
    size: tuple[int, int],
    conditions: Sequence[str],
    samples: int = 16,
) -> Path:
    """Write, capture and render one layout unless its folder is already complete."""
    from bridge_core.trainset.cycles import render_layout

    folder = scene_dir(workdir, seed)
    if (folder / "done").exists():
        return folder
    capture_layout(workdir, seed, size)
    render_layout(
        folder / "scene.usda", size, conditions, folder / "cycles", samples=samples, seed=seed
    )
    (folder / "done").write_text("ok\n")
    return folder


def build_scenes(
    workdir: Path,
    seeds: Sequence[int],
    size: tuple[int, int],
    conditions: Sequence[str],
    samples: int = 16,
    on_scene: Callable[[int], None] | None = None,
) -> list[Path]:
    """``build_scene`` for every seed; a killed build resumes at the first unfinished one."""
    folders = []
    for seed in seeds:
        folders.append(build_scene(workdir, seed, size, conditions, samples))
        if on_scene is not None:
            on_scene(seed)
    return folders


def scene_controls(capture_dir: Path) -> dict[str, np.ndarray]:
    """The four controls of a captured scene, as users get them: name -> [T, H, W, 3] uint8."""
    from bridge_core.controls.build import build_control_stack
    from bridge_core.datasets.detect import open_dataset
    from bridge_core.spec.models import ControlSpec

    (clip,) = open_dataset(capture_dir).clips()
    stack = build_control_stack(clip, {name: ControlSpec() for name in CONTROL_NAMES})
    return {
        name: np.round(np.clip(video, 0, 1) * 255).astype(np.uint8)
        for name, video in stack.videos.items()
    }


def read_targets(folder: Path, condition: str, frames: int = FRAMES) -> np.ndarray:
    """Cycles frames of one condition: [T, H, W, 3] uint8 RGB."""
    paths = [folder / "cycles" / condition / f"rgb_{t:04d}.png" for t in range(frames)]
    return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])


@dataclass
class PackedClips:
    """Finished scenes as arrays, uint8.

    targets:  [S, C, T, H, W, 3] per scene and condition
    controls: name -> [S, T, H, W, 3]
    seeds:    [S] layout seed per scene
    conditions: condition names, in the targets' second axis order
    """

    targets: np.ndarray
    controls: dict[str, np.ndarray]
    seeds: np.ndarray
    conditions: list[str]


def pack_clips(workdir: Path, seeds: Sequence[int], conditions: Sequence[str]) -> PackedClips:
    """Controls and targets of the finished scenes among ``seeds``."""
    done = [s for s in seeds if (scene_dir(workdir, s) / "done").exists()]
    if not done:
        raise ValueError(f"no finished scenes under {workdir / 'scenes'}")
    targets, controls = [], {name: [] for name in CONTROL_NAMES}
    for seed in done:
        folder = scene_dir(workdir, seed)
        for name, video in scene_controls(folder / "capture").items():
            controls[name].append(video)
        targets.append(np.stack([read_targets(folder, c) for c in conditions]))
    return PackedClips(
        np.stack(targets),
        {name: np.stack(videos) for name, videos in controls.items()},
        np.asarray(done),
        list(conditions),
    )


def save_packed(packed: PackedClips, path: Path) -> None:
    """One compressed .npz; grey controls keep one channel (no pickled objects inside)."""
    arrays = {"targets": packed.targets, "seeds": packed.seeds}
    for name, video in packed.controls.items():
        arrays[f"control_{name}"] = video[..., :1] if name in GREY_CONTROLS else video
    arrays["conditions"] = np.asarray(packed.conditions)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_packed(path: Path) -> PackedClips:
    """Read what :func:`save_packed` wrote; grey controls come back with three channels."""
    with np.load(path, allow_pickle=False) as data:
        controls = {}
        for name in CONTROL_NAMES:
            video = data[f"control_{name}"]
            controls[name] = np.repeat(video, 3, axis=-1) if video.shape[-1] == 1 else video
        return PackedClips(
            data["targets"], controls, data["seeds"], [str(c) for c in data["conditions"]]
        )
