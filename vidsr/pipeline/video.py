"""Upscale one video file: probe -> plan -> compute -> decode | model | encode -> publish.

The stages run as three overlapping threads (:func:`vidsr.pipeline.runner.run_stages`):
the decode thread (PyAV demux + decode into a bounded queue), the main thread (batching
and all device work) and the encode thread (PyAV encode + mux). The bounded queues keep
memory constant whatever the video length. The compute stage comes from
:func:`vidsr.pipeline.planning.build_compute`; the output is written under a temporary
name and published when complete (:func:`vidsr.pipeline.output.partial_output`, which
also resumes an interrupted run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vidsr.colour.convert import YuvFormat
from vidsr.config import RunConfig
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.upscaler import check_model_choice
from vidsr.errors import InputError
from vidsr.media.content import assess_video
from vidsr.media.deinterlace import plan_interlace
from vidsr.media.hwaccel import HardwarePlan, decoder_accel, plan_hardware
from vidsr.media.images import check_frame_memory
from vidsr.media.probe import VideoInfo, probe
from vidsr.media.resume import run_settings
from vidsr.media.sinks import FileSink, OutputPlan, container_default_codec, plan_output
from vidsr.media.sources import FileSource
from vidsr.media.timestamps import grid_step
from vidsr.pipeline.output import check_paths, partial_output
from vidsr.pipeline.planning import ModelLoader, bounded_queue_size, build_compute, with_shots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did. ``frames`` counts every frame of the output, with the
    ``resumed_at`` leading ones an interrupted run had finished (``--resume``: copied,
    not processed again; 0 for a fresh run); ``seconds`` is this run's time."""

    output: Path
    frames: int
    seconds: float
    output_bytes: int
    corrupt_packets: int = 0
    expected_frames: int | None = None
    expected_is_estimate: bool = False
    decoder: str = "software"
    encoder: str = ""
    content: str = "clean"
    content_reason: str = ""
    missing_frames: int = 0
    timestamp_repairs: int = 0
    resumed_at: int = 0
    precision: str = "fp32"

    @property
    def frames_lost(self) -> int:
        """Frames of the input that could not be decoded: a truncated or damaged input.
        ``missing_frames`` is worked out by :func:`missing_frames` (from the header's
        exact count less edit-list discards, or from how much of the stream's timeline
        the decoded frames cover), so healthy files with start offsets, edit lists,
        variable frame rates or timestamp gaps lose none."""
        return self.missing_frames

    @property
    def fps(self) -> float:
        """Frames processed per second by this run (the resumed ones not counted)."""
        done = self.frames - self.resumed_at
        return done / self.seconds if self.seconds > 0 else 0.0


def default_output_path(src: Path, scale: int) -> Path:
    """``movie.mp4`` -> ``movie_x2.mp4`` next to the input."""
    return src.with_name(f"{src.stem}_x{scale}{src.suffix}")


def upscale_video(
    src: str | Path,
    dst: str | Path | None = None,
    config: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo, OutputPlan], None] | None = None,
    loader: ModelLoader | None = None,
) -> RunSummary:
    """Upscale a video file, copying its audio and subtitles, keeping timestamps and tags.

    Args:
        src: input video path.
        dst: output path; default ``<stem>_x<scale><ext>`` next to the input.
        config: model, scale, device, batching, tiling, colour and encoding options.
        progress: called with the number of frames just written (from the encode thread).
        on_start: called once the input is probed and the output planned.
        loader: loads the model (see :func:`~vidsr.pipeline.planning.build_compute`); a
            library run passes one that keeps the model loaded between its videos.

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
    info, out_info, config, plan, hardware = plan_run(src, dst, config)
    if on_start is not None:
        on_start(out_info, plan)
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, plan.bits)
    settings = run_settings(info, config)
    with partial_output(dst, settings, resume=config.resume, overwrite=config.overwrite) as out:
        compute = build_compute(
            config,
            info.width,
            info.height,  # after the output's lock
            PlaneFormats(info.yuv, out_fmt, plan.work_format),
            assess=lambda: assess_video(src, info.stream_index),
            loader=loader,
        )
        started = time.perf_counter()
        point = out.resume_from
        if point is not None and progress is not None:
            progress(point.frames_done)
        source = FileSource(
            info,
            plan.passthrough,
            skip_frames=point.frames_done if point else 0,
            hwaccel=decoder_accel(hardware),
            deinterlace=config.deinterlace,
            pts_step=grid_step(plan.codec_time_base, info.time_base),
        )
        sink = FileSink(plan, out_info, out.path, resume_from=point)
        queue_size = bounded_queue_size(config.queue_size, plan.width, plan.height, plan.bits)
        items = with_shots(source.items, config, info.yuv.bits, cuts=compute.model.stateful)
        compute.run(items, sink, queue_size, progress)
        if source.frames_decoded == 0:
            raise InputError(f"{src}: no frame could be decoded")
    seconds = time.perf_counter() - started
    repairs = source.stamps.repairs + sink.stamps.repairs
    missing = missing_frames(out_info, source)
    expected = out_info.frame_count
    if not out_info.frame_count_exact and expected is not None:
        expected = source.frames_decoded + missing  # what the decoded timeline implies
    return RunSummary(
        dst,
        sink.frames_written,
        seconds,
        dst.stat().st_size,
        source.corrupt_packets,
        expected,
        not out_info.frame_count_exact,
        hardware.decoder_label,
        plan.codec,
        compute.content.kind,
        compute.content.reason,
        missing,
        repairs,
        point.frames_done if point is not None else 0,
        compute.processor.precision_label,
    )


# Durations in headers are approximate: an estimate counts frames as lost past this
# share of the stream (and at least one frame).
ESTIMATE_MARGIN = 0.02


def missing_frames(info: VideoInfo, source: FileSource) -> int:
    """Frames the input should have had but that did not decode.

    With an exact count from the header: that count (already less the edit-list
    discards the probe counted), less any further discards, less the frames decoded.
    Otherwise counts are estimates (VFR, timestamp gaps), so frames are missing only
    where decoding stopped before the stream's end:
    the uncovered end of the timeline at the frame rate, past :data:`ESTIMATE_MARGIN`.
    """
    if info.frame_count is None:
        return 0
    decoded = source.frames_decoded
    if info.frame_count_exact:
        unexpected_discards = max(0, source.discarded - info.discarded_frames)
        return max(0, info.frame_count - unexpected_discards - decoded)
    end = info.end_seconds
    if end is None or source.end_pts is None or not info.duration_seconds:
        return 0
    uncovered = end - float(source.end_pts * info.time_base)
    if uncovered <= max(ESTIMATE_MARGIN * info.duration_seconds, float(1 / info.frame_rate)):
        return 0
    return max(1, round(uncovered * info.frame_rate))


def plan_run(
    src: Path, dst: Path, config: RunConfig
) -> tuple[VideoInfo, VideoInfo, RunConfig, OutputPlan, HardwarePlan]:
    """Check everything before any work (input, output, model, encoding plan): the
    input's description, that of the frames the model gets (deinterlaced or not),
    ``config`` with the encoder the hardware plan picked, the output plan and the
    hardware plan."""
    info = probe(src)
    out_info = plan_interlace(info, config.deinterlace)
    check_paths(src, dst, config.overwrite)
    check_model_choice(config.model, config.scale, self_ensemble=config.self_ensemble)
    check_frame_memory(
        src.name, info.width, info.height, 3, 1 if info.yuv.bits <= 8 else 2, config.scale
    )
    codec = config.encode.codec or container_default_codec(dst)  # VP9 for .webm
    hardware = plan_hardware(
        config.hwaccel,
        src,
        info.stream_index,
        codec,
        info.width * config.scale,
        info.height * config.scale,
    )
    config = replace(config, encode=replace(config.encode, codec=hardware.encoder))
    plan = plan_output(out_info, dst, config.encode, config.scale)
    if info.matrix_guessed:
        log.info(
            "%s does not declare its colour matrix; using %s for %dx%d",
            src,
            "BT.709" if info.yuv.matrix == 1 else "BT.601",
            info.width,
            info.height,
        )
    return info, out_info, config, plan, hardware
