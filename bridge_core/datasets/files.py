"""Reading the files datasets are made of, with errors that name the file.

Every reader raises :class:`DatasetError` (never a bare OSError or cv2's silent
None) so a corrupt picture in frame 812 says which file it is.
"""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge_core.errors import DatasetError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


# Reads are bounded: a header or a path naming a device (/dev/zero) never makes us read or
# allocate without end. Specs and labels are text of a few kB to a few MB.
TEXT_LIMIT = 64 * 2**20


def read_text(
    path: Path,
    limit: int = TEXT_LIMIT,
    error: type[InputError] = DatasetError,
    field: str | None = None,
) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; ``error`` naming the
    file otherwise (a folder or a device like /dev/zero is never read)."""
    try:
        if not path.exists():
            raise error("no such file", path, field)
        if not path.is_file():
            raise error("is not a regular file", path, field)
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read ({exc.strerror or exc})", path, field) from None
    if len(data) > limit:
        raise error(f"is larger than {limit / 2**20:g} MiB, the most read here", path, field)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"is not UTF-8 text (byte {exc.start})", path, field) from None


_TRAILING_NUMBER = re.compile(r"(\d+)$")


def renumbered(path: Path, number: int) -> Path:
    """``rgb_0003.png`` -> the same name for frame ``number``, zero-padded alike: the file
    another frame would have (for errors that name a missing one)."""
    digits = _TRAILING_NUMBER.search(path.stem)
    if digits is None:
        raise ValueError(f"{path.name} ends in no frame number")
    stem = f"{path.stem[: digits.start()]}{number:0{len(digits.group(1))}d}"
    return path.with_name(stem + path.suffix)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DatasetError("file is missing", path)
    if not path.is_file():  # a folder, or a link to a device such as /dev/zero
        raise DatasetError("is not a regular file", path)


_UNREADABLE = "not a readable PNG/JPEG picture (corrupt or truncated?)"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# 16384 x 16384: four times an 8K frame. A header claiming more is a broken or hostile
# file, and decoding it would allocate gigabytes.
MAX_PIXELS = 2**28


def _check_pixels(height: int, width: int, path: Path) -> None:
    if height * width > MAX_PIXELS:
        raise DatasetError(
            f"its header claims {width}x{height} pixels, more than the {MAX_PIXELS:,} read here",
            path,
        )


def _check_png_signature(head: bytes, path: Path) -> None:
    """DatasetError unless ``head``, a file's first bytes, starts as a PNG does."""
    if not head.startswith(_PNG_SIGNATURE):
        if head.startswith(_JPEG_SIGNATURE):
            raise DatasetError("is a JPEG picture named .png; save it as PNG", path)
        raise DatasetError("is not a PNG picture (it lacks PNG's signature)", path)


def read_image(path: Path) -> np.ndarray:
    """A PNG/JPEG as stored: [H,W] or [H,W,C] with channels in RGB(A) order, any dtype."""
    _check_file(path)
    image = _decode_png(path)
    if image is not None:
        return image
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(_UNREADABLE, path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def read_rgb(path: Path) -> np.ndarray:
    """[H,W,3] uint8 RGB; alpha dropped, grey expanded, 16-bit scaled down."""
    _check_file(path)
    image = _decode_png(path)
    if image is not None:
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB) if image.shape[2] == 4 else image
    # IMREAD_COLOR lets the decoder drop alpha and expand grey, saving a pass.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(_UNREADABLE, path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_png(path: Path) -> np.ndarray | None:
    """An 8-bit grey, RGB or RGBA PNG, [H,W] or [H,W,C] in RGB(A) order, decoded by
    FFmpeg; None for other files and other kinds of PNG (16-bit, palette, grey with
    alpha), which OpenCV reads.

    FFmpeg's decoder takes 20-40% less time than OpenCV's on Replicator's rgb and
    segmentation pictures (1280x704), and checks every chunk's CRC as libpng does.
    """
    if path.suffix.lower() != ".png":
        return None
    import av

    data = path.read_bytes()  # an OSError (no permission) is said as what it is
    _check_png_signature(data, path)
    if len(data) >= 24:
        _check_pixels(int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"), path)
    try:
        codec = av.CodecContext.create("png", "r")
        codec.options = {"err_detect": "crccheck"}
        (frame,) = codec.decode(av.Packet(data))
    except (av.error.FFmpegError, ValueError) as exc:
        raise DatasetError(_UNREADABLE, path) from exc
    if frame.format.name not in ("gray", "rgb24", "rgba"):
        return None
    return np.ascontiguousarray(frame.to_ndarray())


def read_npy(path: Path) -> np.ndarray:
    """A .npy array; pickled object arrays are refused (never unpickle untrusted files)."""
    _check_file(path)
    try:
        _check_npy_size(path)
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _npy_error(exc, path) from exc


def _npy_error(exc: Exception, path: Path) -> DatasetError:
    if isinstance(exc, ValueError):
        return DatasetError(f"not a plain numpy array file ({exc})", path)
    return DatasetError(f"corrupt or truncated .npy file ({exc})", path)


def _check_npy_size(path: Path) -> tuple[int, ...] | None:
    """The shape the header declares; DatasetError where that is more data than the file
    holds, before anything that large is allocated."""
    with path.open("rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            return None  # 3.0 (UTF-8 field names): np.load's own checks
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        held = path.stat().st_size - file.tell()
    if declared > held:
        raise DatasetError(
            f"header declares {shape} {dtype} ({declared / 2**20:,.1f} MiB) but the file "
            f"holds {held:,} bytes of data (truncated or corrupt)",
            path,
        )
    return shape


def picture_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of a PNG or .npy from its header, checking that the file is whole, without
    decoding it (None for other kinds of file); DatasetError naming the file otherwise.

    A PNG's chunks are walked by their lengths up to IEND (a truncated file ends early);
    an .npy's header must not declare more data than the file holds.
    """
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            shape = _check_npy_size(path)
        except (ValueError, OSError, EOFError) as exc:
            raise _npy_error(exc, path) from exc
        if shape is None or len(shape) < 2:
            return None  # np.load's own checks, when the array is read
        return int(shape[0]), int(shape[1])
    if suffix != ".png":
        return None
    try:
        with path.open("rb") as file:
            _check_png_signature(file.read(8), path)
            size = None
            while True:
                head = file.read(8)
                if len(head) < 8:
                    raise DatasetError("truncated PNG: it ends before its last chunk", path)
                length, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind == b"IHDR":
                    ihdr = file.read(8)
                    size = int.from_bytes(ihdr[4:8], "big"), int.from_bytes(ihdr[:4], "big")
                    _check_pixels(*size, path)
                    length -= len(ihdr)
                if kind == b"IEND":
                    break
                file.seek(length + 4, 1)  # the chunk's data and CRC
            if size is None:
                raise DatasetError("not a valid PNG: it has no IHDR header", path)
            if file.tell() + 4 > path.stat().st_size:
                raise DatasetError("truncated PNG: it ends inside its last chunk", path)
            return size
    except OSError as exc:
        raise DatasetError(f"cannot read ({exc.strerror or exc})", path) from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON ({exc})", path) from exc


class VideoFile:
    """A video decoded once, on first access, into [T,H,W,3] uint8 RGB frames.

    Frame access is thread-safe; the decoded frames stay in memory until
    :meth:`release` (a 121-frame 640x480 clip is about 110 MB).
    """

    def __init__(self, path: Path):
        _check_file(path)
        self.path = path
        self._frames: np.ndarray | None = None
        self._lock = threading.Lock()
        self.num_frames, self.width, self.height, self.fps = probe_video(path)

    def frames(self) -> np.ndarray:
        with self._lock:
            if self._frames is None:
                self._frames = decode_video(self.path)
            return self._frames

    def frame(self, index: int) -> np.ndarray:
        frames = self.frames()
        if not 0 <= index < len(frames):
            raise DatasetError(f"video has {len(frames)} frames, frame {index} asked", self.path)
        return frames[index]

    def release(self) -> None:
        with self._lock:
            self._frames = None


def probe_video(path: Path) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) from the container, decoding as little as possible."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for _ in container.decode(stream))
            ctx = stream.codec_context
            return int(count), int(ctx.width), int(ctx.height), float(stream.average_rate or 0)
    except (av.error.FFmpegError, IndexError) as exc:
        raise DatasetError(f"not a readable video ({exc})", path) from exc


def decode_video(path: Path) -> np.ndarray:
    """Every frame of a video as [T,H,W,3] uint8 RGB."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise DatasetError(f"not a readable video ({exc})", path) from exc
    if not frames:
        raise DatasetError("video has no frames", path)
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """Write [T,H,W,3] uint8 RGB as H.264 mp4 (odd sizes padded by one pixel)."""
    _encode_video(str(path), frames, fps)


def encode_video(frames: np.ndarray, fps: float = 30.0) -> bytes:
    """:func:`write_video`'s file as bytes, for a file written by another process."""
    buffer = io.BytesIO()
    _encode_video(buffer, frames, fps)
    return buffer.getvalue()


def _encode_video(target: str | io.BytesIO, frames: np.ndarray, fps: float) -> None:
    import av

    _t, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with av.open(target, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        # Constant quantiser, one thread, no psychovisual or macroblock-tree tuning: those
        # depend on floating-point state, and the same frames must give the same bytes.
        stream.thread_count = 1
        stream.options = {
            "qp": "18",
            # Previews and control videos: speed over file size. At a constant quantiser
            # the quality is the same; ultrafast encodes ~2.5x faster for larger files.
            "preset": "ultrafast",
            "threads": "1",
            "x264-params": "psy=0:mbtree=0:aq-mode=0",
        }
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
