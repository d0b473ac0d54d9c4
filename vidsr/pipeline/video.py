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
from vidsr.engine.processor import PlaneFormats
from vidsr.engine.upscaler import check_model_choice
from vidsr.errors import InputError
from vidsr.media.hwaccel import HardwarePlan, decoder_accel, plan_hardware
from vidsr.media.probe import VideoInfo, probe
from vidsr.media.resume import run_settings
from vidsr.media.sinks import FileSink, OutputPlan, plan_output
from vidsr.media.sources import FileSource
from vidsr.pipeline.output import check_paths, partial_output
from vidsr.pipeline.planning import bounded_queue_size, build_compute, with_shots
from vidsr.pipeline.runner import run_stages

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
    info, config, plan, hardware = _plan_run(src, dst, config)
    if on_start is not None:
        on_start(info, plan)
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, plan.bits)
    settings = run_settings(info, config)
    with partial_output(dst, settings, resume=config.resume, overwrite=config.overwrite) as out:
        compute = build_compute(config, info.width, info.height,  # after the output's lock
                                PlaneFormats(info.yuv, out_fmt, plan.work_format))
        started = time.perf_counter()
        point = out.resume_from
        if point is not None and progress is not None:
            progress(point.frames_done)
        source = FileSource(info, plan.passthrough, skip_frames=point.frames_done if point else 0,
                            hwaccel=decoder_accel(hardware))
        sink = FileSink(plan, info, out.path, resume_from=point)
        queue_size = bounded_queue_size(config.queue_size, plan.width, plan.height, plan.bits)
        run_stages(with_shots(source.items, config, info.yuv.bits), compute.processor, sink,
                   batch_size=compute.batch_size, queue_size=queue_size, progress=progress)
        if source.frames_decoded == 0:
            raise InputError(f"{src}: no frame could be decoded")
    seconds = time.perf_counter() - started
    return RunSummary(dst, sink.frames_written, seconds, dst.stat().st_size,
                      source.corrupt_packets, info.frame_count, not info.frame_count_exact,
                      hardware.decoder_label, plan.codec)


def _plan_run(src: Path, dst: Path, config: RunConfig) -> tuple[VideoInfo, RunConfig, OutputPlan,
                                                                HardwarePlan]:
    """Check everything before any work (input, output, model, encoding plan): the
    input's description, ``config`` with the encoder the hardware plan picked, the output
    plan and the hardware plan."""
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
    return info, config, plan, hardware
