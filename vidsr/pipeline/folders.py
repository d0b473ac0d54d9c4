"""Upscale frame folders: folder -> folder, folder -> video, video -> folder.

The same three overlapping stages as a video (:func:`vidsr.pipeline.runner.run_stages`),
the same compute stage (:func:`vidsr.pipeline.planning.build_compute`: model, tiles,
batching) and per-shot colour matching: a folder is one clip. Only the ends change:
:class:`~vidsr.media.folders.FolderSource` / :class:`~vidsr.media.folders.FolderSink` in
place of the file source and sink. A folder encoded as a video is written under a
temporary name and published when complete, as a video's output is
(:func:`vidsr.pipeline.output.partial_output`; it cannot be resumed).

A folder of images of several sizes (photos, scans) is upscaled size by size, each size
with its own compute plan and colour statistics (a size change starts a new shot); names
and formats are kept as for one size. A folder encoded as a video needs one size
(:func:`~vidsr.media.folders.check_one_size`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidsr.colour.convert import YuvFormat
from vidsr.config import RunConfig
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.upscaler import check_model_choice
from vidsr.errors import EncodeError, InputError, OutputExistsError
from vidsr.media.content import assess_images, assess_video
from vidsr.media.folders import (
    FolderEntry,
    FolderScan,
    FolderSink,
    FolderSource,
    ImageFrame,
    check_one_size,
    group_by_size,
    remove_temp_files,
    scan_folder,
)
from vidsr.media.images import (
    IMAGE_WORK_FORMAT,
    IMAGE_YUV,
    OUTPUT_FORMATS,
    check_frame_memory,
    read_picture,
)
from vidsr.media.planes import HostFrame
from vidsr.media.probe import VideoInfo, probe, synthetic_video_info
from vidsr.media.sinks import CONTAINERS, FileSink, plan_output
from vidsr.media.sources import FileSource, StreamPacket
from vidsr.pipeline.output import check_paths, partial_output
from vidsr.pipeline.planning import Items, bounded_queue_size, build_compute, with_shots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderSummary:
    """What a finished folder run did: ``frames`` written, ``skipped`` inputs (not images
    or unreadable), ``resumed`` frames whose output already existed."""

    output: Path
    frames: int
    skipped: int
    resumed: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class FolderOptions:
    """Frame-folder options besides :class:`RunConfig`.

    Attributes:
        image_format: output image format (``png``, ``jpg``, ``tiff``...); ``None`` keeps
            each input's (frames from a video default to PNG).
        fps: frame rate when a folder is encoded as a video.
        strict: an unreadable image stops the run instead of being skipped.
        resume: skip frames whose output exists (outputs are written atomically, so an
            existing one is complete); without it, existing outputs need ``overwrite``.
        workers: image read and write threads each.
    """

    image_format: str | None = None
    fps: Fraction = Fraction(25)
    strict: bool = False
    resume: bool = False
    workers: int = 2


def default_folder_output(src: Path, scale: int) -> Path:
    """``frames/`` -> ``frames_x2/`` beside it."""
    return src.with_name(f"{src.name}_x{scale}")


def image_info(path: Path, width: int, height: int, bits: int, fps: Fraction) -> VideoInfo:
    """A :class:`VideoInfo` describing a frame folder as a clip, for output planning and
    the file sink: BT.601 studio-range YUV (as :data:`IMAGE_YUV`), ``bits`` deep, one
    frame per ``1/fps`` tick, sRGB-like BT.709 primaries, no other streams."""
    yuv = YuvFormat(IMAGE_YUV.matrix, IMAGE_YUV.full_range, bits)
    return synthetic_video_info(
        path=path,
        container_format="image2",
        width=width,
        height=height,
        source_format="rgb48le" if bits > 8 else "rgb24",
        work_format=IMAGE_WORK_FORMAT,
        yuv=yuv,
        frame_rate=fps,
        time_base=1 / fps,
        color_primaries=1,
        color_trc=13,
    )


def upscale_folder(
    src: str | Path,
    dst: str | Path | None = None,
    config: RunConfig | None = None,
    options: FolderOptions | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> FolderSummary:
    """Upscale every image of folder ``src`` into folder ``dst``, or into a video when
    ``dst`` has a video extension (``.mp4``, ``.mkv``...).

    Images of one size are one clip: batched, and colour-matched per shot
    (``config.colour``) as a video's frames are; each further size is its own clip.
    With ``options.resume`` the frames already written are not read again, so the
    shot statistics of the remaining ones start afresh.

    Args:
        progress: called with the number of frames just written (encode thread).
        on_start: called with the number of frames to write, once everything is checked.

    Raises:
        InputError, OptionError, ModelError, EncodeError, DeviceError, OutputExistsError.
        ``KeyboardInterrupt`` passes through; every image already written is complete.
    """
    config = config or RunConfig()
    options = options or FolderOptions()
    src = Path(src)
    dst = Path(dst) if dst is not None else default_folder_output(src, config.scale)
    if not src.is_dir():
        raise InputError(f"not a folder: {src}")

    # 1. Check everything before any work: images, output, model.
    to_video = dst.suffix.lower() in CONTAINERS and not dst.is_dir()  # "out.v2/" is a folder
    scan = scan_folder(
        src, image_format=None if to_video else options.image_format, strict=options.strict
    )
    check_model_choice(config.model, config.scale, self_ensemble=config.self_ensemble)
    if to_video:
        return _folder_to_video(scan, dst, config, options, progress, on_start)
    entries, resumed = _plan_folder_output(scan, dst, config.overwrite, options.resume)
    if on_start is not None:
        on_start(len(entries))
    started = time.perf_counter()
    if not entries:
        return FolderSummary(dst, 0, len(scan.skipped), resumed, 0.0)

    # 2. Each size its own run (model plan, batches, shot statistics): a size change
    #    starts a new shot.
    written = unread = 0
    order = {entry.out_name: i for i, entry in enumerate(scan.entries)}
    for (width, height), group in group_by_size(entries, (scan.width, scan.height)):
        done, failed = _upscale_group(group, width, height, dst, config, options, progress, order)
        written, unread = written + done, unread + failed
    if written == 0 and unread:
        raise InputError(f"no image in {src} could be read")
    skipped = len(scan.skipped) + unread
    return FolderSummary(dst, written, skipped, resumed, time.perf_counter() - started)


def _upscale_group(
    entries: tuple[FolderEntry, ...],
    width: int,
    height: int,
    dst: Path,
    config: RunConfig,
    options: FolderOptions,
    progress: Callable[[int], None] | None,
    order: dict[str, int] | None = None,
) -> tuple[int, int]:
    """Upscale images of one size into ``dst``: read -> batch -> model -> colour ->
    write, overlapped, in 16-bit YUV 4:4:4. Returns ``(written, skipped)``. ``order``:
    each output name's place in the folder's name order (a recurrent model's state is
    reset after a gap in it, see :func:`_restart_after_gaps`)."""
    check_group_memory(entries, width, height, config.scale)
    source = FolderSource(entries, width, height, strict=options.strict, workers=options.workers)
    sink = FolderSink(dst, IMAGE_YUV, workers=options.workers)
    formats = PlaneFormats(IMAGE_YUV, IMAGE_YUV, IMAGE_WORK_FORMAT)
    compute = build_compute(
        config, width, height, formats, assess=lambda: assess_images([e.path for e in entries[:32]])
    )
    s = config.scale
    stateful = compute.model.stateful
    items = with_shots(source.items, config, IMAGE_YUV.bits, cuts=stateful)
    if stateful and order is not None:
        items = _restart_after_gaps(items, order)
    compute.run(
        items, sink, bounded_queue_size(config.queue_size, width * s, height * s, 16), progress
    )
    return sink.frames_written, len(source.skipped)


def check_group_memory(
    entries: tuple[FolderEntry, ...] | list[FolderEntry], width: int, height: int, scale: int
) -> None:
    """Refuse images of ``width x height`` whose upscaling would not fit in memory (the
    deepest layout of the group counts), before any is decoded.

    Raises:
        InputError: see :func:`~vidsr.media.images.check_frame_memory`.
    """
    if not entries:
        return
    channels = max(e.layout[0] for e in entries)
    sample_bytes = max(e.layout[1] for e in entries)
    check_frame_memory(entries[0].path.name, width, height, channels, sample_bytes, scale)


def _plan_folder_output(
    scan: FolderScan, dst: Path, overwrite: bool, resume: bool
) -> tuple[list, int]:
    """Create the output folder; return the entries still to write and how many are done.

    Raises:
        EncodeError: the output is a file, the input folder itself, or not creatable.
        OutputExistsError: outputs exist and neither ``resume`` nor ``overwrite`` is set.
    """
    if dst.exists() and not dst.is_dir():
        raise EncodeError(f"output is a file, expected a folder: {dst}")
    if dst.exists() and dst.resolve() == scan.folder.resolve():
        raise EncodeError(f"output folder is the input folder: {dst}; pick another -o")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EncodeError(f"cannot create output folder {dst}: {e}") from e
    if not os.access(dst, os.W_OK):
        raise EncodeError(f"output folder is not writable: {dst}")
    if remove_temp_files(dst):
        log.info("removed temporary files left in %s by an interrupted run", dst)
    done = [e for e in scan.entries if (dst / e.out_name).exists()]
    if done and not resume and not overwrite:
        raise OutputExistsError(
            f"{len(done)} output image(s) exist in {dst}, e.g. {done[0].out_name} "
            f"(use --resume to skip them or --overwrite to replace them)"
        )
    if resume:
        return [e for e in scan.entries if not (dst / e.out_name).exists()], len(done)
    return list(scan.entries), 0


def _folder_to_video(
    scan: FolderScan,
    dst: Path,
    config: RunConfig,
    options: FolderOptions,
    progress: Callable[[int], None] | None,
    on_start: Callable[[int], None] | None,
) -> FolderSummary:
    """Encode the upscaled images of ``scan`` as a video at ``options.fps``."""
    check_one_size(scan)
    check_group_memory(scan.entries, scan.width, scan.height, config.scale)
    bits = read_picture(scan.entries[0].path).bits
    info = image_info(scan.folder, scan.width, scan.height, bits, options.fps)
    check_paths(scan.folder, dst, config.overwrite)
    plan = plan_output(info, dst, config.encode, config.scale)
    if on_start is not None:
        on_start(len(scan.entries))
    out_fmt = YuvFormat(IMAGE_YUV.matrix, IMAGE_YUV.full_range, plan.bits)
    formats = PlaneFormats(IMAGE_YUV, out_fmt, plan.work_format)
    compute = build_compute(
        config,
        scan.width,
        scan.height,
        formats,
        assess=lambda: assess_images([e.path for e in scan.entries[:32]]),
    )
    source = FolderSource(
        scan.entries, scan.width, scan.height, strict=options.strict, workers=options.workers
    )
    started = time.perf_counter()
    with partial_output(dst, overwrite=config.overwrite) as out:
        sink = FileSink(plan, info, out.path)
        items = with_shots(source.items, config, IMAGE_YUV.bits, cuts=compute.model.stateful)
        compute.run(items, sink, config.queue_size, progress)
        if source.frames_read == 0:
            raise InputError(f"no image in {scan.folder} could be read")
    skipped = len(scan.skipped) + len(source.skipped)
    return FolderSummary(dst, sink.frames_written, skipped, 0, time.perf_counter() - started)


def video_to_folder(
    src: str | Path,
    dst: str | Path,
    config: RunConfig | None = None,
    options: FolderOptions | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> FolderSummary:
    """Upscale a video into a folder of images ``<stem>_000000.png``, ... (0-based decode
    order; ``options.image_format`` picks another format). 8-bit videos give 8-bit images,
    deeper ones 16-bit (in formats that hold it). Audio and subtitles are not written.

    Raises:
        InputError, OptionError, ModelError, EncodeError, DeviceError, OutputExistsError.
    """
    config = config or RunConfig()
    options = options or FolderOptions()
    src, dst = Path(src), Path(dst)

    # 1. Check: input video, output folder, model.
    info = probe(src)
    check_model_choice(config.model, config.scale, self_ensemble=config.self_ensemble)
    ext = OUTPUT_FORMATS[(options.image_format or "png").lower()]
    pattern = f"{src.stem}_{{index:06d}}{ext}"
    scan = FolderScan(src, (), info.width, info.height)
    _plan_folder_output(
        scan, dst, config.overwrite, options.resume
    )  # creates dst, checks writability
    existing = {p.name for p in dst.iterdir()}
    clash = [n for n in existing if n.startswith(f"{src.stem}_") and n.endswith(ext)]
    if clash and not options.resume and not config.overwrite:
        raise OutputExistsError(
            f"{len(clash)} output image(s) exist in {dst}, e.g. {min(clash)} "
            f"(use --resume to skip them or --overwrite to replace them)"
        )
    if on_start is not None:
        on_start(info.frame_count or 0)

    # 2. Model: planes of the video's own matrix and range, 4:4:4, 8 or 16 bits.
    bits = 8 if info.yuv.bits <= 8 else 16
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, bits)
    work = "yuv444p" if bits == 8 else "yuv444p16le"
    compute = build_compute(
        config,
        info.width,
        info.height,
        PlaneFormats(info.yuv, out_fmt, work),
        assess=lambda: assess_video(src, info.stream_index),
    )
    source = FileSource(info)
    sink = FolderSink(dst, out_fmt, pattern=pattern, bits=bits, workers=options.workers)
    stateful = compute.model.stateful
    items = with_shots(source.items, config, info.yuv.bits, cuts=stateful)
    if options.resume:
        exists = lambda f: (dst / pattern.format(index=f.index)).exists()  # noqa: E731
        items = _skip_done(items, exists, restart=stateful)

    # 3. Run decode -> batch -> model -> colour -> write.
    started = time.perf_counter()
    compute.run(items, sink, config.queue_size, progress)
    if source.frames_decoded == 0:
        raise InputError(f"{src}: no frame could be decoded")
    resumed = source.frames_decoded - sink.frames_written
    return FolderSummary(dst, sink.frames_written, 0, resumed, time.perf_counter() - started)


def _skip_done(items: Items, done: Callable[[HostFrame], bool], *, restart: bool = False) -> Items:
    """Drop frames whose output exists; a dropped frame's shot start moves to the next kept
    one. With ``restart`` (a recurrent model) every kept frame after dropped ones starts a
    shot: the state must not carry over the gap."""

    def kept(stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
        carry = False
        for item in items(stop):
            if isinstance(item, HostFrame):
                if done(item):
                    carry = carry or item.new_shot or restart
                    continue
                item.new_shot = item.new_shot or carry
                carry = False
            yield item

    return kept


def _restart_after_gaps(items: Items, order: dict[str, int]) -> Items:
    """For a recurrent model: mark a frame as starting a shot when it does not follow,
    in the folder's name order (``order``: output name -> place), the frame the model saw
    before it (an image of another size, an output already written or an unreadable
    image came between): the state must not carry over the gap."""

    def marked(stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
        last: int | None = None
        for item in items(stop):
            if isinstance(item, ImageFrame):
                here = order[item.out_name]
                if last is None or here != last + 1:
                    item.new_shot = True
                last = here
            yield item

    return marked
