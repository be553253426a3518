"""Where a run's outputs go: ``<dataset>/cosmos_transfer/<run-name>/<variation>/``.

Each variation folder is itself a BasicWriter dataset that mirrors the input: the same
file names, one folder per render product where the input has them, the generated
``rgb_NNNN.png`` in place of the rendered one and every other file of the frame (its
labels) linked or copied beside it. Inputs in other layouts (CosmosWriter, control
videos, picture folders) get the per-render-product BasicWriter layout, one folder per
camera. For a dataset given as a single video the dataset folder is the video's folder.
"""

from __future__ import annotations

from pathlib import Path

from bridge_core.datasets.basicwriter import is_basicwriter_folder
from bridge_core.datasets.types import Clip, Dataset, Frame
from bridge_core.spec.models import REJECTED_FOLDER, REPORT_FOLDER

RUNS_FOLDER = "cosmos_transfer"
RUN_FILE = "run.json"


class OutputLayout:
    """Output paths of one run over ``dataset``; relative paths are relative to ``run_dir``."""

    def __init__(self, dataset: Dataset, run_name: str):
        self.dataset = dataset
        root = dataset.root
        self.dataset_dir = root if root.is_dir() else root.parent
        self.run_dir = self.dataset_dir / RUNS_FOLDER / run_name
        self._basicwriter = dataset.layout == "basicwriter"
        self._flat = self._basicwriter and is_basicwriter_folder(root)

    def _camera_rel(self, camera: str) -> Path:
        return Path() if self._flat else Path(camera)

    def rgb(self, variation: str, frame: Frame) -> str:
        """The generated rgb of ``frame`` in ``variation``, e.g. ``fog/Camera/rgb/rgb_0007.png``."""
        folder = self._camera_rel(frame.camera) / ("" if self._flat else "rgb")
        return (Path(variation) / folder / f"rgb_{frame.index:04d}.png").as_posix()

    def labels(self, variation: str, frame: Frame) -> list[tuple[Path, str]]:
        """(input file, output path) of each label file of ``frame``, in a stable order."""
        pairs = []
        for annotator, paths in sorted(frame.label_files.items()):
            for path in paths:
                if self._basicwriter:
                    rel = path.relative_to(self.dataset.root)
                else:
                    rel = self._camera_rel(frame.camera) / annotator / path.name
                pairs.append((path, (Path(variation) / rel).as_posix()))
        return pairs

    def source(self, frame: Frame) -> str | None:
        """The input rgb file of ``frame`` relative to the dataset folder, where it is a file."""
        if not self._basicwriter:
            return None
        rel = self.rgb("", frame)
        return rel if (self.dataset.root / rel).is_file() else None

    def report(self, clip: Clip) -> str:
        """The report folder of a clip, named by its frames so it survives other selections."""
        first, last = clip.frame_indices[0], clip.frame_indices[-1]
        return f"{REPORT_FOLDER}/{clip.camera}/frames_{first:04d}-{last:04d}"

    def rejected(self, output: str) -> str:
        """Where a frame of a clip the quality gate rejected goes instead of ``output``
        (:meth:`rgb`), e.g. ``rejected/fog/Camera/rgb/rgb_0007.png``."""
        return f"{REJECTED_FOLDER}/{output}"

    def rejected_scores(self, variation: str, clip: Clip) -> str:
        """The scores and reasons of a rejected clip, beside its frames."""
        first, last = clip.frame_indices[0], clip.frame_indices[-1]
        return f"{REJECTED_FOLDER}/{variation}/quality_{clip.camera}_{first:04d}-{last:04d}.json"
