"""Still images in and out: reading, writing (atomically) and RGB <-> planar YUV.

Images become frames of the video pipeline as planar YUV 4:4:4 with 16-bit codes
(:data:`IMAGE_YUV`: BT.601 studio range, the MATLAB ``rgb2ycbcr`` luma that vidsr's luma
models are trained on, in the ``yuv444p16le`` layout). 16-bit codes hold 8-bit RGB
exactly (RGB -> YUV -> RGB rounds back to the same 8-bit values) and 16-bit RGB to
within about one code of 65535. Alpha never enters the pipeline: it is upscaled by plain
interpolation when the frame is written.

Pixel IO is OpenCV's (it keeps 16-bit PNG/TIFF and alpha, which Pillow does not for
48-bit RGB); Pillow only reads headers for the folder scan. OpenCV's BGR order stays
inside this module: everything public is RGB.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from vidsr.colour.convert import YuvFormat, rgb_to_yuv, yuv_to_rgb

# Read and written image extensions, re-exported for media.folders and pipeline.folders.
from vidsr.config import IMAGE_EXTENSIONS, OUTPUT_FORMATS  # noqa: F401
from vidsr.errors import EncodeError, InputError
from vidsr.media.planes import Planes

if TYPE_CHECKING:  # torch is imported by the colour conversions that need it
    import torch

DEEP_EXTENSIONS = (".png", ".tif", ".tiff")  # can hold 16 bits per channel
ALPHA_EXTENSIONS = (".png", ".tif", ".tiff", ".webp", ".bmp")  # can hold an alpha channel
IMAGE_YUV = YuvFormat(matrix=6, full_range=False, bits=16)
IMAGE_WORK_FORMAT = "yuv444p16le"
TEMP_SUFFIX = ".vidsr-tmp"  # temporary files of atomic writes: ``.<name>.<random>.vidsr-tmp``
_JPEG_QUALITY = 95


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the system's ``MemAvailable``
    (``/proc/meminfo``, else ``os.sysconf`` free pages), a cgroup v2 ``memory.max`` less
    its ``memory.current``, and an address-space ``ulimit -v`` less the process's size.
    ``None`` when nothing can be read."""
    limits: list[int] = []
    meminfo = _read_text("/proc/meminfo")
    match = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo or "", re.MULTILINE)
    if match:
        limits.append(int(match.group(1)) * 1024)
    elif hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
        limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    cap = _read_text("/sys/fs/cgroup/memory.max")
    used = _read_text("/sys/fs/cgroup/memory.current")
    if cap and cap.strip().isdigit() and used and used.strip().isdigit():
        limits.append(int(cap) - int(used))
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        status = _read_text("/proc/self/status") or ""
        size = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
        if soft != resource.RLIM_INFINITY and size:
            limits.append(soft - int(size.group(1)) * 1024)
    except (ImportError, OSError, ValueError):
        pass
    return max(0, min(limits)) if limits else None


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def frame_memory_bytes(
    width: int, height: int, channels: int, sample_bytes: int, scale: int
) -> int:
    """Host memory one ``width x height`` frame takes on its way through the pipeline, at
    its peak: the decoded pixels (``channels x sample_bytes`` each), the 16-bit planes
    and float32 model input, then the upscaled frame as float32, as 16-bit planes and as
    decoded pixels for writing. Other frames in flight come on top."""
    pixels = width * height
    decoded = pixels * channels * sample_bytes
    upscaled = pixels * scale * scale * 3
    return decoded + pixels * 3 * (2 + 4) + upscaled * (4 + 2 + sample_bytes)


def check_frame_memory(
    name: str,
    width: int,
    height: int,
    channels: int,
    sample_bytes: int,
    scale: int,
    available: int | None = None,
) -> None:
    """Refuse a frame whose decoding and upscaling would not fit in memory, before any of
    it is decoded (a small, well-compressed image can hold a huge frame).

    Args:
        name: the file, for the message.
        available: bytes free (default :func:`available_memory`; unknown: no check).

    Raises:
        InputError: one line naming the frame size, the memory it needs and the limit.
    """
    available = available_memory() if available is None else available
    if available is None:
        return
    needed = frame_memory_bytes(width, height, channels, sample_bytes, scale)
    if needed > available:
        raise InputError(
            f"{name} is {width}x{height}: upscaling it x{scale} needs about "
            f"{needed / 2**30:.1f} GiB of memory, more than the {available / 2**30:.1f} GiB "
            f"available; use a smaller image or --scale, or free memory"
        )


def image_layout(image: Image.Image) -> tuple[int, int]:
    """``(channels, bytes per sample)`` an image decodes to, from its Pillow header."""
    mode = image.mode
    sample_bytes = 2 if "16" in mode or mode in ("I", "F") else 1
    if mode in ("L", "I", "F", "1") or mode.startswith("I;16"):
        return 1, sample_bytes
    return (4 if mode in ("RGBA", "LA", "PA") or "transparency" in image.info else 3), sample_bytes


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``f2`` before ``f10``: digit runs compare as numbers, the rest
    case-insensitively (ties broken by the exact name)."""
    parts = re.split(r"(\d+)", name)
    key = tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p)
    return key + ((1, name),)


@dataclass
class Picture:
    """A decoded image.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 or uint16 RGB (gamma-encoded, as stored).
        alpha: ``(H, W)`` alpha of the same dtype, or ``None``.
        gray: the file was single-channel (it is written back as such).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    gray: bool

    @property
    def bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8


# EXIF orientation (tag 0x0112) -> how to turn stored pixels upright, as PIL's
# ImageOps.exif_transpose does: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
# 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def exif_orientation(path: Path) -> int:
    """The EXIF orientation of an image file (1, upright, when absent or unreadable)."""
    try:
        with Image.open(path) as image:
            return int(image.getexif().get(0x0112, 1))
    except (OSError, ValueError, SyntaxError):  # PIL's errors for files it cannot parse
        return 1


def read_picture(path: Path) -> Picture:
    """Read an image file, turned upright by its EXIF orientation (the output is written
    upright and without the tag, so it displays as the input does).

    Raises:
        InputError: unreadable, or a sample type other than 8/16-bit integer.
    """
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"cannot read image {path}")
    upright = _UPRIGHT.get(exif_orientation(path))
    if upright is not None:
        data = np.ascontiguousarray(upright(data))
    if data.dtype not in (np.uint8, np.uint16):
        raise InputError(
            f"{path}: {data.dtype} samples are not supported (8- or 16-bit images only)"
        )
    if data.ndim == 2 or data.shape[2] == 1:
        gray = data.reshape(data.shape[0], data.shape[1])
        return Picture(np.repeat(gray[:, :, None], 3, axis=2), None, True)
    if data.shape[2] == 4:
        return Picture(
            np.ascontiguousarray(data[:, :, 2::-1]), np.ascontiguousarray(data[:, :, 3]), False
        )
    return Picture(np.ascontiguousarray(data[:, :, ::-1]), None, False)


def _affine(
    fn: Callable[[torch.Tensor], torch.Tensor], in_scale: float, out_scale: float
) -> np.ndarray:
    """The 3x4 matrix ``[A | b]`` with ``fn(x / in_scale) * out_scale == A @ x + b`` for an
    affine colour conversion ``fn`` of ``(1, 3, 1, 1)`` tensors, read off by evaluating it
    at 0 and the unit vectors (so :mod:`vidsr.colour.convert` stays the one definition)."""
    import torch

    points = torch.cat([torch.zeros(1, 3), torch.eye(3)]).to(torch.float64)[:, :, None, None]
    values = fn(points / in_scale)[:, :, 0, 0] * out_scale  # (4, 3)
    offset = values[0]
    return torch.cat([(values[1:] - offset).T, offset[:, None]], dim=1).numpy()


def _apply_affine(pixels: np.ndarray, matrix: np.ndarray, peak: int, dtype: type) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H, W, 3)`` of ``dtype``: ``matrix @ [p, 1]``, rounded and clamped
    to ``[0, peak]``. cv2.transform is one vectorised pass (torch or numpy would take
    several full-size temporaries)."""
    out = cv2.transform(pixels.astype(np.float32), matrix.astype(np.float32))
    np.rint(out, out=out)
    np.clip(out, 0, peak, out=out)
    return out.astype(dtype)


def rgb_to_planes(rgb: np.ndarray, fmt: YuvFormat = IMAGE_YUV) -> Planes:
    """``(H, W, 3)`` uint8/uint16 RGB -> ``(Y, Cb, Cr)`` 4:4:4 planes, ``(H, W)`` each,
    holding ``fmt`` codes (uint16 when ``fmt.bits > 8``, else uint8)."""
    peak = 65535 if rgb.dtype == np.uint16 else 255

    def to_yuv(x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.cat(rgb_to_yuv(x, fmt), dim=1)

    matrix = _affine(to_yuv, peak, fmt.code_scale)
    codes = _apply_affine(rgb, matrix, fmt.max_code, np.uint16 if fmt.bits > 8 else np.uint8)
    return codes[:, :, 0].copy(), codes[:, :, 1].copy(), codes[:, :, 2].copy()


def planes_to_rgb(planes: Planes, fmt: YuvFormat, bits: int) -> np.ndarray:
    """``(Y, Cb, Cr)`` planes of ``fmt`` codes -> ``(H, W, 3)`` RGB with ``bits`` (8 or 16)
    per sample, clamped and rounded. Subsampled chroma is upsampled (bilinear) first."""
    y, u, v = planes
    h, w = y.shape
    if u.shape != (h, w):
        u = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
    peak = 65535 if bits == 16 else 255

    def to_rgb(x: torch.Tensor) -> torch.Tensor:
        return yuv_to_rgb(x[:, :1], x[:, 1:], fmt)

    matrix = _affine(to_rgb, fmt.code_scale, peak)
    return _apply_affine(cv2.merge([y, u, v]), matrix, peak, np.uint16 if bits == 16 else np.uint8)


def output_extension(source_ext: str, format_name: str | None) -> str:
    """The output file extension: ``format_name`` (``png``, ``jpg``...) or the source's own."""
    if format_name is None:
        return source_ext
    return OUTPUT_FORMATS[format_name.lower()]


def encode_picture(rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, ext: str) -> bytes:
    """Encode an image for a file with extension ``ext``.

    ``rgb`` ``(H, W, 3)`` and ``alpha`` ``(H, W)`` must share a dtype (uint8 or uint16);
    the caller has already reduced them to what ``ext`` can hold (see
    :data:`DEEP_EXTENSIONS`, :data:`ALPHA_EXTENSIONS`).

    Raises:
        EncodeError: OpenCV cannot encode it.
    """
    if gray:
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        data = rgb[:, :, ::-1]
    if alpha is not None:
        data = np.dstack([data, alpha])
    params: list[int] = []
    if ext.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(data), params)
    except cv2.error as e:
        raise EncodeError(f"cannot encode {ext} image: {e}") from e
    if not ok:
        raise EncodeError(f"cannot encode {ext} image")
    return buf.tobytes()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic
    rename, so ``path`` either does not exist or is complete (even if the process is killed).

    Raises:
        EncodeError: the file cannot be written.
    """
    # os.open rather than mkstemp: mkstemp makes 0600 files; this honours the umask like open().
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise EncodeError(f"cannot write {path}: {e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise EncodeError(f"cannot write {path}: {e}") from e


def resize_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upscale an ``(h, w)`` uint8/uint16 alpha plane to ``(height, width)`` with bicubic
    interpolation (OpenCV saturates to the dtype's range)."""
    return cv2.resize(alpha, (width, height), interpolation=cv2.INTER_CUBIC)
