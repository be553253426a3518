"""What a dataset is, whatever its format: cameras -> clips -> frames, loaded lazily.

A :class:`Frame` knows which modalities it has and reads each one from disk the
first time it is asked for (and keeps it until :meth:`Frame.release`). Readers for
each format build frames with a loader callable; nothing here knows about files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge_core.errors import DatasetError, InputError
from bridge_core.parallel import for_each_frame

# Modality names a frame may carry. "control/<name>" holds a control picture that
# the dataset already provides (Cosmos control videos, CosmosWriter edges).
RGB = "rgb"
DEPTH = "depth"
SEMANTIC = "semantic"
INSTANCE = "instance"
NORMALS = "normals"
CAMERA = "camera"


def control_modality(name: str) -> str:
    """The modality key of a precomputed control picture, e.g. ``control/depth``."""
    return f"control/{name}"


@dataclass(frozen=True)
class CameraParams:
    """Pinhole intrinsics (pixels) and pose of one frame.

    ``cam_to_world`` is [4,4] in the column-vector convention (x_world = M @ x_cam);
    the camera looks along -Z with +Y up, as in USD and Replicator.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    cam_to_world: np.ndarray
    near_far: tuple[float, float] = (0.01, 1e6)
    meters_per_unit: float = 1.0

    @property
    def intrinsics(self) -> np.ndarray:
        """[3,3] matrix K mapping camera rays (x right, y down, z forward) to pixels."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


@dataclass(frozen=True)
class Segmentation:
    """Segment ids [H,W] int32 and what each id means.

    ``labels`` maps id -> semantic class string (comma-joined for multi-label prims,
    as Replicator writes them) for semantic segmentation, or id -> prim path for
    instance segmentation, whose ``semantics`` then maps id -> class.
    """

    ids: np.ndarray
    labels: dict[int, str]
    semantics: dict[int, str] | None = None


@dataclass(eq=False)
class Frame:
    """One camera (render product) at one time.

    Modalities are read on first access through ``loader(modality)``. ``label_files``
    lists the files beside the frame that an output should point at (boxes,
    occlusion, camera params), by annotator name. ``sources`` is the file each
    modality is read from, ``missing`` the file of a modality the camera's other frames
    have and this one lacks (both for errors that name a file), and ``probe(modality)``
    checks the modality's files without decoding them and returns its (H, W) where the
    header tells it.
    """

    camera: str
    index: int
    modalities: frozenset[str]
    loader: Callable[[str], Any] = field(repr=False)
    label_files: dict[str, tuple[Path, ...]] = field(default_factory=dict, repr=False)
    sources: dict[str, Path] = field(default_factory=dict, repr=False)
    missing: dict[str, Path] = field(default_factory=dict, repr=False)
    probe: Callable[[str], tuple[int, int] | None] | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def has(self, modality: str) -> bool:
        return modality in self.modalities

    def get(self, modality: str) -> Any:
        """The modality's value, read from disk on first access."""
        if modality not in self.modalities:
            if modality in self.missing:
                raise DatasetError(
                    f"file is missing: frame {self.index} of camera {self.camera!r} has no "
                    f"{modality}, which the camera's other frames have",
                    self.missing[modality],
                )
            have = ", ".join(sorted(self.modalities)) or "nothing"
            raise DatasetError(
                f"frame {self.index} of camera {self.camera!r} has no {modality} (it has {have})"
            )
        if modality not in self._cache:
            self._cache[modality] = self.loader(modality)
        return self._cache[modality]

    def share(self, modality: str, array: np.ndarray) -> None:
        """Hold ``array``, a view of a clip's stack equal to what was read, in place of
        the frame's own copy of ``modality`` (of a segmentation: its ids)."""
        value = self._cache[modality]
        self._cache[modality] = (
            replace(value, ids=array) if isinstance(value, Segmentation) else array
        )

    def forget(self, modality: str) -> None:
        """Forget what was read of ``modality`` (it is read again when asked for)."""
        self._cache.pop(modality, None)

    def release(self) -> None:
        """Forget what was read, so a long dataset does not stay in memory."""
        self._cache.clear()

    @property
    def rgb(self) -> np.ndarray:
        """[H,W,3] uint8 (alpha, where the file has one, is dropped)."""
        return self.get(RGB)

    @property
    def depth(self) -> np.ndarray:
        """[H,W] float32 metres along the optical axis; inf where invalid."""
        return self.get(DEPTH)

    @property
    def depth_valid(self) -> np.ndarray:
        """[H,W] bool: finite and positive depth."""
        return np.isfinite(self.depth)

    @property
    def semantic(self) -> Segmentation:
        return self.get(SEMANTIC)

    @property
    def instance(self) -> Segmentation:
        return self.get(INSTANCE)

    @property
    def normals(self) -> np.ndarray:
        """[H,W,3] float32 unit normals (world frame, as Replicator writes them)."""
        return self.get(NORMALS)

    @property
    def camera_params(self) -> CameraParams:
        return self.get(CAMERA)

    def control(self, name: str) -> np.ndarray:
        """A control picture the dataset provides, [H,W,3] float32 in [0,1]."""
        return self.get(control_modality(name))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frame, from the first picture modality it has."""
        modality = self.picture_modality
        if modality is not None:
            array = _array_of(self.get(modality))
            return int(array.shape[0]), int(array.shape[1])
        if CAMERA in self.modalities:
            return self.camera_params.height, self.camera_params.width
        raise DatasetError(f"frame {self.index} of camera {self.camera!r} has no pictures")

    @property
    def picture_modality(self) -> str | None:
        """The modality :attr:`size` is read from: rgb where there is one."""
        for modality in (RGB, DEPTH, SEMANTIC, INSTANCE, *sorted(self.modalities)):
            if modality in self.modalities and modality != CAMERA:
                return modality
        return None


@dataclass(eq=False)
class Clip:
    """Consecutive frames of one camera; the unit the model and the controls work on."""

    camera: str
    index: int
    frames: list[Frame]
    _stacks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _derived: dict[Hashable, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_indices(self) -> list[int]:
        return [f.index for f in self.frames]

    @property
    def modalities(self) -> frozenset[str]:
        """Modalities the clip's frames have; a frame that lacks one is an error when it is
        read (:meth:`check` finds it first), never a reason to drop it for the clip."""
        return frozenset.union(*(f.modalities for f in self.frames))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W), checked to be the same for every frame."""
        sizes = [f.size for f in self.frames]
        usual = max(set(sizes), key=sizes.count)
        for frame, (h, w) in zip(self.frames, sizes, strict=True):
            if (h, w) != usual:
                raise DatasetError(
                    f"frame {frame.index} of camera {self.camera!r} is {w}x{h}, its other "
                    f"frames {usual[1]}x{usual[0]}; every frame of a camera must have the "
                    "same resolution",
                    frame.sources.get(frame.picture_modality or ""),
                )
        return usual

    def require(self, modality: str, needed_for: str, field: str) -> None:
        """Raise an InputError naming ``field`` unless every frame has ``modality``."""
        if modality not in self.modalities:
            have = ", ".join(sorted(self.modalities))
            raise InputError(
                f"{needed_for} needs {modality} but camera {self.camera!r} has none "
                f"(it has {have})",
                field=field,
            )

    def check(self, modalities: Iterable[str]) -> None:
        """DatasetError naming the file, before anything is decoded, unless every frame has
        each of ``modalities`` in whole files, and all their pictures are one size.

        A picture of another size than most is the one blamed, whichever frame it is.
        """
        wanted = sorted(modalities)
        sizes: dict[tuple[int, int], list[Path]] = {}
        for frame in self.frames:
            for modality in wanted:
                if not frame.has(modality):
                    frame.get(modality)  # raises, naming the missing file
                size = frame.probe(modality) if frame.probe is not None else None
                if size is not None:
                    sizes.setdefault(size, []).append(frame.sources[modality])
        if len(sizes) > 1:
            usual = max(sizes, key=lambda size: len(sizes[size]))
            odd = next(size for size in sizes if size != usual)
            raise DatasetError(
                f"is {odd[1]}x{odd[0]} but camera {self.camera!r}'s other pictures are "
                f"{usual[1]}x{usual[0]} (width x height); every frame and annotator of a "
                "camera must have one resolution",
                sizes[odd][0],
            )

    def stack(self, modality: str) -> np.ndarray:
        """[T,...] array of one modality, e.g. ``clip.stack("depth")``; for a segmentation,
        its ids [T,H,W] (their meaning per frame: :meth:`labels`).

        Kept until :meth:`release`, since several controls read the same stack;
        callers must not modify it.
        """
        if modality not in self._stacks:
            self.load([modality])
        return self._stacks[modality]

    def derived(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()``, made once per ``key`` and kept until :meth:`release`.

        For what several steps derive from the same frames (the rgb's Canny edges feed the
        edge control and the Edge F1 metric); callers must not modify it.
        """
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def labels(self, modality: str) -> list[dict[int, str]]:
        """Per frame, what the ids of a segmentation modality mean (class or prim path)."""
        return [f.get(modality).labels for f in self.frames]

    def load(self, modalities: Iterable[str]) -> None:
        """Read ``modalities`` of every frame into the clip's stacks (see :meth:`stack`),
        frames in parallel threads.

        Decoding (PNG, npy) releases the GIL, so threads use every core. Each frame is
        copied into its stack while it is still in the cache, and holds a view of the
        stack from then on: one copy of the pixels in memory, not two.
        """
        wanted = [m for m in modalities if m not in self._stacks]
        stacks: dict[str, np.ndarray] = {}
        made = threading.Lock()

        def read(t: int) -> None:
            frame = self.frames[t]
            for modality in wanted:
                array = _array_of(frame.get(modality))
                if not isinstance(array, np.ndarray):
                    continue  # camera parameters and the like have no stack
                with made:  # by the first frame read, whichever it is
                    if modality not in stacks:
                        stacks[modality] = np.empty((len(self.frames), *array.shape), array.dtype)
                self._place(stacks[modality], t, modality, array)

        # The first frame sets each stack's shape, so an odd frame is the one blamed.
        read(0)
        for_each_frame(lambda t: read(t + 1), len(self.frames) - 1)
        self._check_sizes({**self._stacks, **stacks})
        self._stacks.update(stacks)

    def _check_sizes(self, stacks: dict[str, np.ndarray]) -> None:
        """DatasetError unless every picture stack [T,H,W,...] has one (H, W): a depth of
        another size than the rgb would be misaligned with it, or fail deep inside."""
        sizes = {m: s.shape[1:3] for m, s in stacks.items() if s.ndim >= 3}
        if len(set(sizes.values())) > 1:
            first = self.frames[0]
            usual = sizes.get(RGB) or max(sizes.values(), key=list(sizes.values()).count)
            odd = next(m for m, size in sorted(sizes.items()) if size != usual)
            listed = ", ".join(f"{m} {w}x{h}" for m, (h, w) in sorted(sizes.items()))
            raise DatasetError(
                f"camera {self.camera!r} frame {first.index}: pictures of one frame differ in "
                f"size ({listed}, width x height); every annotator must write the rgb's "
                "resolution",
                first.sources.get(odd),
            )

    def _place(self, stack: np.ndarray, t: int, modality: str, array: np.ndarray) -> None:
        if array.shape != stack.shape[1:] or not np.can_cast(array.dtype, stack.dtype):
            frame = self.frames[t]
            raise DatasetError(
                f"frame {frame.index} of camera {self.camera!r} has {modality} {array.dtype} "
                f"{array.shape}, frame {self.frames[0].index} {stack.dtype} "
                f"{stack.shape[1:]}; every frame of a camera must match",
                frame.sources.get(modality),
            )
        stack[t] = array
        self.frames[t].share(modality, stack[t])

    def forget(self, modalities: Iterable[str]) -> None:
        """Forget the stacks and frame values of ``modalities``; what was derived stays."""
        for modality in modalities:
            self._stacks.pop(modality, None)
            for f in self.frames:
                f.forget(modality)

    def release(self) -> None:
        self._stacks.clear()
        self._derived.clear()
        for f in self.frames:
            f.release()


def _array_of(value: Any) -> np.ndarray:
    return value.ids if isinstance(value, Segmentation) else value


@dataclass(eq=False)
class Camera:
    """One render product: its frames, in order, split into natural segments.

    ``segments`` are runs of frames that belong together (CosmosWriter's clip
    folders); a BasicWriter camera has one segment.
    """

    name: str
    segments: list[list[Frame]]

    @property
    def frames(self) -> list[Frame]:
        return [f for seg in self.segments for f in seg]

    @property
    def resolution(self) -> tuple[int, int]:
        """(W, H) of the camera's first frame."""
        h, w = self.frames[0].size
        return w, h

    def clips(
        self, clip_length: int | None = None, frame_range: tuple[int, int] | None = None
    ) -> list[Clip]:
        """Clips of at most ``clip_length`` frames (None: one per segment).

        ``frame_range`` (start, stop) selects frames by their index, stop excluded.
        """
        if clip_length is not None and clip_length < 1:
            raise DatasetError(f"clip length must be at least 1, got {clip_length}")
        clips: list[Clip] = []
        for seg in self.segments:
            chosen = [f for f in seg if _in_range(f.index, frame_range)]
            step = clip_length or max(len(chosen), 1)
            for start in range(0, len(chosen), step):
                clips.append(Clip(self.name, len(clips), chosen[start : start + step]))
        return clips


def _in_range(index: int, frame_range: tuple[int, int] | None) -> bool:
    return frame_range is None or frame_range[0] <= index < frame_range[1]


@dataclass(eq=False)
class Dataset:
    """A folder of captured data in one of the supported layouts."""

    root: Path
    layout: str
    cameras: dict[str, Camera]
    metadata: dict[str, Any] = field(default_factory=dict)

    def camera(self, name: str) -> Camera:
        if name not in self.cameras:
            raise DatasetError(
                f"no camera {name!r} (cameras: {', '.join(self.cameras)})", self.root, "cameras"
            )
        return self.cameras[name]

    def clips(
        self,
        cameras: Sequence[str] | None = None,
        clip_length: int | None = None,
        frame_range: tuple[int, int] | None = None,
    ) -> list[Clip]:
        """Every clip of the chosen cameras (all when None), camera by camera."""
        names: Iterable[str] = cameras if cameras else self.cameras
        clips = [c for n in names for c in self.camera(n).clips(clip_length, frame_range)]
        if not clips:
            raise DatasetError(f"no frames selected (frame range {frame_range})", self.root)
        return clips

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset().union(*(f.modalities for c in self.cameras.values() for f in c.frames))
