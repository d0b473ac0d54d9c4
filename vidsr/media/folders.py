"""Frame folders: scan a folder of images, read them as frames, write frames as images.

:func:`scan_folder` lists a folder's images in natural order (``f2`` before ``f10``) and
checks their headers. :class:`FolderSource` reads them as :class:`ImageFrame` (planar
YUV 4:4:4, 16-bit codes, see :mod:`vidsr.media.images`) in the runner's decode thread, and
:class:`FolderSink` writes upscaled frames as images in its encode thread. Both decode
or encode in a small worker pool (OpenCV releases the GIL), so image IO overlaps
inference even when one image takes longer than one model call. Every output file is
written atomically (temporary name, then rename), so an existing output is complete.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vidsr.colour.convert import YuvFormat
from vidsr.errors import EncodeError, InputError, OptionError
from vidsr.media.images import (
    ALPHA_EXTENSIONS,
    DEEP_EXTENSIONS,
    IMAGE_EXTENSIONS,
    IMAGE_YUV,
    TEMP_SUFFIX,
    Picture,
    encode_picture,
    image_layout,
    natural_key,
    output_extension,
    planes_to_rgb,
    read_picture,
    resize_alpha,
    rgb_to_planes,
    write_atomic,
)
from vidsr.media.planes import HostFrame, Planes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderEntry:
    """One input image and the file name its upscaled version gets in the output folder;
    ``size`` is its upright ``(width, height)`` and ``layout`` the ``(channels, bytes
    per sample)`` it decodes to, from its header (``(0, 0)``: not read)."""

    path: Path
    out_name: str
    size: tuple[int, int] = (0, 0)
    layout: tuple[int, int] = (3, 1)


@dataclass(frozen=True)
class FolderScan:
    """The images of a folder, in natural order; ``width x height`` is the first one's
    size (see :meth:`by_size` for folders of photos or scans of several sizes)."""

    folder: Path
    entries: tuple[FolderEntry, ...]
    width: int
    height: int
    skipped: tuple[str, ...] = ()  # names of files passed over (not images, unreadable)

    def by_size(self) -> list[tuple[tuple[int, int], tuple[FolderEntry, ...]]]:
        """The entries grouped by size, sizes in order of first appearance, each group
        in natural order (entries of an unread size go with the first size)."""
        return group_by_size(self.entries, (self.width, self.height))


def group_by_size(
    entries: tuple[FolderEntry, ...] | list[FolderEntry], default: tuple[int, int]
) -> list[tuple[tuple[int, int], tuple[FolderEntry, ...]]]:
    """``entries`` grouped by :attr:`FolderEntry.size` (unknown sizes count as ``default``),
    in order of first appearance."""
    groups: dict[tuple[int, int], list[FolderEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.size if entry.size != (0, 0) else default, []).append(entry)
    return [(size, tuple(group)) for size, group in groups.items()]


@dataclass(kw_only=True)
class ImageFrame(HostFrame):
    """A :class:`HostFrame` read from an image, with what writing it back needs.

    Attributes:
        out_name: output file name (no folder part).
        bits: bits per sample of the source image (8 or 16).
        alpha: ``(H, W)`` source alpha (dtype of the image), or ``None``.
        gray: the source was single-channel.
    """

    out_name: str
    bits: int
    alpha: np.ndarray | None = None
    gray: bool = False


def scan_folder(
    folder: Path, *, image_format: str | None = None, strict: bool = False
) -> FolderScan:
    """List ``folder``'s images in natural order and check their headers.

    Hidden files and sub-folders are ignored; other non-image files are skipped with a
    warning, as are images whose header cannot be read (unless ``strict``).

    Args:
        image_format: output format (``png``, ``jpg``...) or ``None`` to keep each file's.

    Images may differ in size (a folder of photos or scans); :meth:`FolderScan.by_size`
    groups them.

    Raises:
        InputError: not a folder, no image in it, or an unreadable image with ``strict``.
        OptionError: two inputs would write the same output name (``a.jpg`` and ``a.png``
            with ``--format png``).
    """
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    names = sorted(
        (p.name for p in folder.iterdir() if not p.name.startswith(".")), key=natural_key
    )
    entries: list[FolderEntry] = []
    skipped: list[str] = []
    sizes: dict[tuple[int, int], str] = {}
    taken: dict[str, str] = {}
    for name in names:
        path = folder / name
        if path.is_dir():
            continue
        ext = path.suffix.lower()
        if ext not in IMAGE_EXTENSIONS:
            log.warning("skipping %s: not an image (%s)", path, ", ".join(IMAGE_EXTENSIONS))
            skipped.append(name)
            continue
        try:
            with Image.open(path) as im:
                size = im.size
                layout = image_layout(im)
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # shown turned a quarter
                    size = size[::-1]
        except Exception as e:  # noqa: BLE001 - Pillow raises many types for a bad file
            if strict:
                raise InputError(f"cannot read image {path}: {e}") from e
            log.warning("skipping %s: cannot read image (%s)", path, e)
            skipped.append(name)
            continue
        sizes.setdefault(size, name)
        out_name = path.stem + output_extension(path.suffix, image_format)
        if out_name in taken:
            raise OptionError(f"{taken[out_name]} and {name} would both be written as {out_name}")
        taken[out_name] = name
        entries.append(FolderEntry(path, out_name, size, layout))
    if not entries:
        raise InputError(f"no image in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    width, height = next(iter(sizes))
    return FolderScan(folder, tuple(entries), width, height, tuple(skipped))


def check_one_size(scan: FolderScan) -> None:
    """Refuse a folder of several image sizes where one frame size is needed (a video).

    Raises:
        InputError: one line naming two images of different sizes.
    """
    groups = scan.by_size()
    if len(groups) > 1:
        (w1, h1), first = groups[0]
        (w2, h2), other = groups[1]
        raise InputError(
            f"images differ in size: {first[0].path.name} is {w1}x{h1} but "
            f"{other[0].path.name} is {w2}x{h2}; a video needs one frame size, so upscale "
            f"to a folder or put each size in its own folder"
        )


def _load(path: Path, yuv: YuvFormat) -> tuple[Planes, Picture]:
    picture = read_picture(path)
    return rgb_to_planes(picture.rgb, yuv), picture


class FolderSource:
    """Reads a folder's images as frames, in order, ``workers`` images ahead.

    Frames get consecutive ``index``/``pts`` (one tick each) over the images that could
    be read; an unreadable image is skipped with a warning (``strict``: it raises).

    Args:
        entries: the images to read (from :func:`scan_folder`, maybe minus finished ones).
        width, height: the size every image must have.
        yuv: the planes' format (default :data:`~vidsr.media.images.IMAGE_YUV`).
    """

    def __init__(
        self,
        entries: tuple[FolderEntry, ...] | list[FolderEntry],
        width: int,
        height: int,
        *,
        yuv: YuvFormat = IMAGE_YUV,
        strict: bool = False,
        workers: int = 2,
    ) -> None:
        self.entries = tuple(entries)
        self.width, self.height = width, height
        self.yuv = yuv
        self.strict = strict
        self.workers = max(1, workers)
        self.frames_read = 0
        self.skipped: list[str] = []

    def items(self, stop: threading.Event) -> Iterator[ImageFrame]:
        """Yield the frames until the end or ``stop``.

        Raises:
            InputError: with ``strict``, the first image that cannot be read or has
                another size.
        """
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vidsr-read")
        pending: deque[tuple[FolderEntry, Future]] = deque()
        todo = iter(self.entries)
        try:
            while True:
                while len(pending) < 2 * self.workers and (entry := next(todo, None)) is not None:
                    pending.append((entry, pool.submit(_load, entry.path, self.yuv)))
                if not pending or stop.is_set():
                    return
                entry, future = pending.popleft()
                try:
                    planes, picture = future.result()
                    h, w = picture.rgb.shape[:2]
                    if (w, h) != (self.width, self.height):
                        raise InputError(
                            f"{entry.path} is {w}x{h}, expected {self.width}x{self.height}"
                        )
                except InputError as e:
                    if self.strict:
                        raise
                    log.warning("skipping %s", e)
                    self.skipped.append(entry.path.name)
                    continue
                index = self.frames_read
                self.frames_read += 1
                yield ImageFrame(
                    index,
                    index,
                    1,
                    planes,
                    out_name=entry.out_name,
                    bits=picture.bits,
                    alpha=picture.alpha,
                    gray=picture.gray,
                )
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)


@dataclass
class FolderSink:
    """Writes upscaled frames as images into ``folder``, each atomically.

    Frames from a :class:`FolderSource` keep their name, depth, alpha (upscaled bicubic)
    and greyness; other frames (from a video) are named ``pattern.format(index=...)`` with
    ``bits`` per sample. A format that cannot hold 16 bits gets 8; one without alpha
    drops it (with a warning).

    Args:
        folder: existing output folder.
        yuv: matrix, range and bits of the planes handed to :meth:`write_frame`.
        pattern: name pattern for frames that are not :class:`ImageFrame`.
        bits: sample depth for frames that are not :class:`ImageFrame`.
        workers: encoder threads; at most ``2 * workers`` frames wait to be written.
    """

    folder: Path
    yuv: YuvFormat
    pattern: str = "frame_{index:06d}.png"
    bits: int = 8
    workers: int = 2
    frames_written: int = 0
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _pending: deque = field(default_factory=deque, init=False, repr=False)
    _warned_alpha: bool = field(default=False, init=False, repr=False)

    def open(self) -> None:
        self._pool = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="vidsr-write")

    def write_frame(self, planes: Planes, frame: HostFrame) -> None:
        """Queue one frame for writing; raises the error of an earlier failed write."""
        assert self._pool is not None, "open() first"
        if isinstance(frame, ImageFrame):
            name, bits, alpha, gray = frame.out_name, frame.bits, frame.alpha, frame.gray
        else:
            name, bits, alpha, gray = self.pattern.format(index=frame.index), self.bits, None, False
        path = self.folder / name
        if path.parent != self.folder:  # names come from a folder listing; never write elsewhere
            raise EncodeError(f"refusing to write outside {self.folder}: {name!r}")
        ext = path.suffix.lower()
        if alpha is not None and ext not in ALPHA_EXTENSIONS:
            if not self._warned_alpha:
                log.warning("%s images cannot hold alpha: transparency is dropped", ext)
                self._warned_alpha = True
            alpha = None
        self._pending.append(self._pool.submit(self._write, planes, path, bits, alpha, gray))
        while len(self._pending) > 2 * max(1, self.workers):
            self._pending.popleft().result()
            self.frames_written += 1

    def _write(
        self, planes: Planes, path: Path, bits: int, alpha: np.ndarray | None, gray: bool
    ) -> None:
        out_bits = bits if path.suffix.lower() in DEEP_EXTENSIONS else 8
        rgb = planes_to_rgb(planes, self.yuv, out_bits)
        if alpha is not None:
            alpha = resize_alpha(alpha, rgb.shape[0], rgb.shape[1])
            if alpha.dtype == np.uint16 and out_bits == 8:
                alpha = ((alpha.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        write_atomic(path, encode_picture(rgb, alpha, gray, path.suffix))

    def mux_packet(self, stream_index: int, packet: object) -> None:
        """Frame folders hold no audio or subtitles: packets are dropped."""

    def close(self) -> None:
        """Wait for every queued write; raise the first error. Safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        error: BaseException | None = None
        try:
            while self._pending:
                try:
                    self._pending.popleft().result()
                    self.frames_written += 1
                except BaseException as e:  # keep waiting for the others; report the first
                    error = error or e
        finally:
            pool.shutdown(wait=True)
        if error is not None:
            raise error


def remove_temp_files(folder: Path) -> int:
    """Delete the temporary files a killed run left in ``folder`` (ours only:
    ``.*.vidsr-tmp``); returns how many."""
    removed = 0
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
