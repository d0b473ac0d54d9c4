"""The streaming video pipeline: decode -> queue -> batch -> model -> colour -> encode.

Three threads: the decode thread (PyAV demux + decode into a bounded queue), the main
thread (batching and all device work), and the encode thread (PyAV encode + mux). The
bounded queues keep memory constant whatever the video length. Any stage's exception
stops the others promptly and is re-raised on the main thread; threads are always joined.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vidsr.colour.convert import YuvFormat
from vidsr.colour.matching import ColourMatcher
from vidsr.config import RunConfig
from vidsr.device import resolve_device
from vidsr.errors import EncodeError, InputError, OutputExistsError
from vidsr.media.hwaccel import decoder_accel, plan_hardware
from vidsr.models.contract import SRModel
from vidsr.media.probe import VideoInfo, probe
from vidsr.engine.processor import FrameProcessor
from vidsr.media.resume import ResumePoint, read_resume_point, remove_settings, run_settings, write_settings
from vidsr.pipeline.runner import run_stages
from vidsr.colour.shots import ShotConfig, ShotDetector
from vidsr.media.sinks import FileSink, OutputPlan, plan_output
from vidsr.media.planes import HostFrame
from vidsr.media.sources import FileSource, StreamPacket
from vidsr.pipeline.shot_marks import with_shot_marks
from vidsr.engine.upscaler import check_model_choice, load_model

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RunSummary:
    """What a finished run did."""

    output: Path
    frames: int
    seconds: float
    output_bytes: int
    corrupt_packets: int = 0
    expected_frames: int | None = None
    expected_is_estimate: bool = False
    decoder: str = "software"
    encoder: str = ""

    @property
    def frames_lost(self) -> int:
        """Frames the input's header announced (or, with ``expected_is_estimate``, that
        its duration implies) but that could not be decoded: a truncated or damaged
        input. Estimates count only past a 2% margin, since durations are approximate."""
        if self.expected_frames is None:
            return 0
        missing = self.expected_frames - self.frames
        if self.expected_is_estimate and missing <= max(1, self.expected_frames // 50):
            return 0
        return max(0, missing)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_output_path(src: Path, scale: int) -> Path:
    """``movie.mp4`` -> ``movie_x2.mp4`` next to the input."""
    return src.with_name(f"{src.stem}_x{scale}{src.suffix}")


def partial_path(dst: Path) -> Path:
    """The temporary name written to until the output is complete: ``out.partial.mp4``."""
    return dst.with_name(f"{dst.stem}.partial{dst.suffix}")


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Fail early on output problems: exists, same as input, folder missing or read-only."""
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"output exists: {dst} (use --overwrite to replace it)")
    if dst.exists() and dst.is_dir():
        raise EncodeError(f"output is a directory: {dst}")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise EncodeError(f"output would overwrite the input: {dst}")
    folder = dst.parent
    if not folder.is_dir():
        raise EncodeError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise EncodeError(f"output folder is not writable: {folder}")


# Frames above this many input pixels are tiled even when --tile is not given, so 8K
# input does not need the whole frame's activations in memory at once.
AUTO_TILE_PIXELS = 3840 * 2160
AUTO_TILE_SIZE = 512
# On the CPU, learned models run fastest on tiles whose activations stay in cache: for the
# fast model on 640x360 frames, 192 px tiles gave 19.9 fps against 16.5 for whole frames
# and 4.6 for batches of 4 (benchmarks, 2-core EPYC). Output equals the untiled one.
CPU_CACHE_TILE = 192


def auto_tile(info: VideoInfo, tile: int | None, device: torch.device | None = None,
              model: SRModel | None = None) -> int | None:
    """The tile size to use: the user's; ``AUTO_TILE_SIZE`` for frames larger than 4K;
    ``CPU_CACHE_TILE`` for learned models on the CPU; else whole frames."""
    if tile is not None:
        return tile
    if info.width * info.height > AUTO_TILE_PIXELS:
        return AUTO_TILE_SIZE
    learned = model is not None and model.family != "baseline"
    if device is not None and device.type == "cpu" and learned and max(info.width, info.height) > CPU_CACHE_TILE:
        return CPU_CACHE_TILE
    return None


# Device memory a learned model needs per input pixel in a batch, for sizing batches from
# free memory: fp16 activations of a few 64-wide layers at input size, the upscaled output
# (x4, float32, 3 channels) and the colour stage's copies, rounded up generously.
CUDA_BYTES_PER_PIXEL = 4096


def auto_batch_size(info: VideoInfo, on_cuda: bool, learned: bool = True,
                    free_bytes: int | None = None) -> int:
    """Frames per model call: enough pixels per call to amortise per-call costs, few
    enough that the batch stays cache- and memory-friendly. Measured on the CPU at
    640x360: the fast model ran 3.6x slower in batches of 4 than one frame at a time,
    while the bicubic baseline ran 17% faster in batches of 4. On CUDA the batch also
    stays within half of ``free_bytes`` (the device's free memory) at
    ``CUDA_BYTES_PER_PIXEL``; an out-of-memory error still falls back to smaller tiles."""
    pixels = max(1, info.width * info.height)
    budget = 8_000_000 if on_cuda else (300_000 if learned else 1_000_000)
    if on_cuda and free_bytes is not None:
        budget = min(budget, free_bytes // 2 // CUDA_BYTES_PER_PIXEL)
    return max(1, min(16 if on_cuda else 8, budget // pixels))


# Host memory the frames waiting in each queue may take: at 4K -> 8K, 16 queued output
# frames of 50 MB each took a run from 4.2 GB to 5.0 GB of peak memory (benchmarks/memory.py).
QUEUE_BYTES = 256 * 2**20


def bounded_queue_size(requested: int, out_width: int, out_height: int, bits: int) -> int:
    """Frames per queue: ``requested``, fewer when that many output frames (4:2:0 sized)
    would pass ``QUEUE_BYTES``, but not below 2 for that reason (the stages must overlap)."""
    frame_bytes = out_width * out_height * 3 // 2 * (1 if bits <= 8 else 2)
    return min(requested, max(2, QUEUE_BYTES // max(1, frame_bytes)))


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (``None`` elsewhere)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def upscale_video(
    src: str | Path,
    dst: str | Path | None = None,
    config: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo, OutputPlan], None] | None = None,
) -> RunSummary:
    """Upscale a video file, copying its audio and subtitles, keeping timestamps and tags.

    Args:
        src: input video path.
        dst: output path; default ``<stem>_x<scale><ext>`` next to the input.
        config: model, scale, device, batching, tiling, colour and encoding options.
        progress: called with the number of frames just written (from the encode thread).
        on_start: called once the input is probed and the output planned.

    Returns:
        A :class:`RunSummary`.

    Raises:
        InputError, OptionError, ModelError, EncodeError, DeviceError, OutputExistsError.
        ``KeyboardInterrupt`` passes through after the partial output has been flushed
        and left under its ``.partial`` name.
    """
    config = config or RunConfig()
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output_path(src, config.scale)

    # 1. Check everything before any work: input, output, model, encoding plan.
    info = probe(src)
    check_paths(src, dst, config.overwrite)
    check_model_choice(config.model, config.scale)
    hardware = plan_hardware(config.hwaccel, src, info.stream_index, config.encode.codec,
                             info.width * config.scale, info.height * config.scale)
    config = replace(config, encode=replace(config.encode, codec=hardware.encoder))
    plan = plan_output(info, dst, config.encode, config.scale)
    if info.matrix_guessed:
        log.info("%s does not declare its colour matrix; using %s for %dx%d",
                 src, "BT.709" if info.yuv.matrix == 1 else "BT.601", info.width, info.height)
    if on_start is not None:
        on_start(info, plan)

    # 2. Model and device.
    device = resolve_device(config.device)
    model = load_model(config.model, config.scale, self_ensemble=config.self_ensemble)
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, plan.bits)
    tile = auto_tile(info, config.tile, device, model)
    processor = FrameProcessor(model, device, info.yuv, out_fmt, plan.work_format, tile,
                               colour_stage=make_colour_stage(config, info.yuv.bits),
                               compile_model=config.compile, cpu_workers=config.cpu_workers or 1)
    batch_size = config.batch_size or auto_batch_size(info, device.type == "cuda", model.family != "baseline",
                                                      free_device_memory(device))

    # 3. Source (decode thread, with shot marks) and sink (encode thread, temporary name).
    write_path = partial_path(dst)
    settings = run_settings(info, config)
    point = read_resume_point(write_path, settings) if config.resume else None
    previous = write_path.with_name(f"{dst.stem}.partial-previous{dst.suffix}")
    if point is not None:  # continue from a copy; the new partial is written in its place
        os.replace(write_path, previous)
        point = ResumePoint(previous, point.frames_done)
        log.info("resuming %s: %d frames already done", dst, point.frames_done)
        if progress is not None:
            progress(point.frames_done)
    source = FileSource(info, plan.passthrough, skip_frames=point.frames_done if point else 0,
                        hwaccel=decoder_accel(hardware))
    sink = FileSink(plan, info, write_path, resume_from=point)
    write_settings(write_path, settings)

    def items(stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
        frames = source.items(stop)
        if config.colour == "shot":
            shots = ShotConfig()
            frames = with_shot_marks(frames, ShotDetector(shots), info.yuv.bits, shots.thumb_size)
        return frames

    # 4. Run decode -> batch -> model -> colour -> encode, overlapped.
    started = time.perf_counter()
    try:
        queue_size = bounded_queue_size(config.queue_size, plan.width, plan.height, plan.bits)
        run_stages(items, processor, sink, batch_size=batch_size, queue_size=queue_size,
                   progress=progress)
    except Exception:
        _remove(write_path)
        if point is not None:  # give the earlier partial back, to resume again
            os.replace(previous, write_path)
        else:
            remove_settings(write_path)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the sink flushed what it had; keep it
        _remove(previous)
        log.warning("stopped: partial output left at %s (continue with --resume)", write_path)
        raise

    # 5. Publish under the final name only when complete.
    if source.frames_decoded == 0:
        _remove(write_path)
        raise InputError(f"{src}: no frame could be decoded")
    os.replace(write_path, dst)
    remove_settings(write_path)
    _remove(previous)
    seconds = time.perf_counter() - started
    return RunSummary(dst, sink.frames_written, seconds, dst.stat().st_size, source.corrupt_packets,
                      info.frame_count, not info.frame_count_exact, hardware.decoder_label, plan.codec)


def make_colour_stage(config: RunConfig, bits: int) -> ColourMatcher | None:
    """Histogram matching for the run; ``None`` when ``--color off``."""
    if config.colour == "off":
        return None
    return ColourMatcher(config.colour, bins=256 if bits <= 8 else 1024)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
