"""Upscale one segment of a long input into its own video file, in any worker process.

:func:`run_segment` is the task function (``fn(task, context)``, top level, picklable
arguments). It decodes from the segment's seek point (a keyframe), drops the pre-roll,
upscales exactly the segment's frames with the timestamps and shot marks of the plan,
and encodes them with the run's settings into a MOV file (which keeps the stream's time
base and every decode timestamp, so they are copied exactly; NUT for codecs MOV cannot
hold, such as FFV1, which are intra-only): the first frame is a keyframe, as it starts a
fresh encoder. The file is written under a temporary name and renamed once complete,
with a record of what it holds beside it (:func:`finished`), so a rerun reuses it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import torch

from vidsr.colour.convert import YuvFormat
from vidsr.colour.matching import ColourMatcher
from vidsr.config import RunConfig
from vidsr.engine.integer import IntegerProcessor
from vidsr.engine.processor import FrameProcessor, PlaneFormats, ProcessorOptions
from vidsr.errors import InputError
from vidsr.media.planes import HostFrame
from vidsr.media.probe import VideoInfo
from vidsr.media.sinks import FileSink, OutputPlan, container_codecs
from vidsr.media.sources import StreamPacket, frame_to_planes
from vidsr.pipeline.jobs import WorkerContext
from vidsr.pipeline.planning import Compute, bounded_queue_size, build_compute, make_colour_stage
from vidsr.pipeline.segmented.plan import Segment

MatcherState = tuple[torch.Tensor | None, torch.Tensor | None, int]


def segment_format(codec: str) -> str:
    """The container of a segment file for ``codec``: MOV, else NUT."""
    encoder = av.codec.Codec(codec, "w")
    supported = container_codecs("mov")
    return "mov" if {encoder.name, encoder.canonical_name} & supported else "nut"


@dataclass(frozen=True)
class SegmentTask:
    """Everything a worker needs for one segment.

    ``pts``, ``durations`` and ``cuts`` describe the segment's own frames (``cuts``: their
    positions in the segment that start a shot); ``state`` is the colour matcher's state
    after the previous segment of the same shot (``None``: start afresh)."""

    info: VideoInfo
    out_info: VideoInfo
    plan: OutputPlan
    config: RunConfig
    segment: Segment
    pts: tuple[int, ...]
    durations: tuple[int, ...]
    cuts: frozenset[int]
    path: Path
    state: MatcherState | None = None


@dataclass(frozen=True)
class SegmentResult:
    """A finished segment: its frames, whether an earlier run's file was reused, and the
    colour matcher's state after its last frame (for a segment continuing the shot)."""

    index: int
    frames: int
    reused: bool
    state: MatcherState | None


def record_path(path: Path) -> Path:
    """The record written beside a finished segment file."""
    return path.with_name(path.name + ".json")


def finished(task: SegmentTask) -> bool:
    """Whether ``task.path`` is a complete segment: its record names the same frames and
    the file demuxes to exactly those packet timestamps (a truncated file does not)."""
    path, record = task.path, record_path(task.path)
    if not path.is_file() or not record.is_file():
        return False
    try:
        saved = json.loads(record.read_text())
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            scale = stream.time_base / task.info.time_base
            stamps = sorted(
                round(p.pts * scale) for p in container.demux(stream) if p.pts is not None
            )
    except (OSError, ValueError, av.error.FFmpegError):
        return False
    return saved.get("pts") == list(task.pts) and stamps == sorted(task.pts)


def run_segment(task: SegmentTask, context: WorkerContext) -> SegmentResult:
    """Upscale and encode one segment (or reuse its finished file); the worker keeps the
    loaded model in ``context.cache``.

    Raises:
        InputError: the segment's frames do not decode from its seek point.
        ModelError, DeviceError, EncodeError.
    """
    state_file = task.path.with_name(task.path.name + ".state.pt")
    needs_state = task.config.colour == "shot"
    if finished(task) and (state_file.is_file() or not needs_state):
        state = torch.load(state_file) if needs_state else None
        context.progress(task.segment.frames)
        return SegmentResult(task.segment.index, task.segment.frames, True, state)
    compute = _compute(task, context.cache)
    matcher = compute.processor.colour_stage
    if isinstance(matcher, ColourMatcher) and task.state is not None:
        matcher.restore(task.state, compute.device)
    partial = task.path.with_name(task.path.name + ".writing")
    plan = replace(
        task.plan,
        path=partial,
        container_format=segment_format(task.plan.codec),
        passthrough=(),
        chapters=False,
        attachments=(),
        codec_tag=None,
    )
    sink = FileSink(plan, task.out_info, partial)
    queue_size = bounded_queue_size(task.config.queue_size, plan.width, plan.height, plan.bits)
    compute.run(lambda stop: _frames(task, stop), sink, queue_size, context.progress)
    if sink.frames_written != task.segment.frames:
        raise InputError(
            f"{task.info.path}: segment {task.segment.index} gave {sink.frames_written} "
            f"of its {task.segment.frames} frames"
        )
    state = matcher.state() if isinstance(matcher, ColourMatcher) else None
    if state is not None:
        torch.save(state, state_file)
    os.replace(partial, task.path)
    record_path(task.path).write_text(json.dumps({"pts": list(task.pts)}))
    return SegmentResult(task.segment.index, sink.frames_written, False, state)


def _compute(task: SegmentTask, cache: dict[str, object]) -> Compute:
    """The run's compute stage with a fresh processor and colour matcher; the model
    (loaded once per worker and configuration) comes from ``cache``."""
    config, info, plan = task.config, task.info, task.plan
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, plan.bits)
    formats = PlaneFormats(info.yuv, out_fmt, plan.work_format)
    key = f"segmented-compute:{config!r}:{info.width}x{info.height}:{formats!r}"
    compute = cache.get(key)
    if not isinstance(compute, Compute):
        compute = build_compute(config, info.width, info.height, formats)
        compute.processor.close()  # each segment gets its own (see below)
        cache[key] = compute
    if isinstance(compute.processor, IntegerProcessor):
        return compute  # the torch-free 8-bit stage keeps no state between segments
    options = ProcessorOptions(
        tile=compute.tile,
        colour_stage=make_colour_stage(config, info.yuv.bits),
        compile_model=config.compile,
        cpu_workers=config.cpu_workers or 1,
        precision=config.precision,
    )
    processor = FrameProcessor(compute.model, compute.device, formats, options)
    return replace(compute, processor=processor)


def _frames(task: SegmentTask, stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
    """The segment's frames, decoded from its seek point: those before its first frame
    are decoded and dropped; each gets the plan's index, timestamp, duration and shot
    mark (decoding stops after the last one)."""
    info, segment = task.info, task.segment
    try:
        container = av.open(str(info.path), metadata_errors="replace")
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot open {info.path}: {e}") from e
    with container:
        video = container.streams[info.stream_index]
        video.thread_type = "AUTO"
        if segment.seek_pts is not None:
            container.seek(segment.seek_pts, backward=True, any_frame=False, stream=video)
        taken = 0
        first = task.pts[0]
        for frame in container.decode(video):
            if stop.is_set() or taken == segment.frames:
                return
            if segment.seek_pts is not None and (frame.pts is None or frame.pts < first):
                continue  # pre-roll from the keyframe
            if segment.seek_pts is not None and taken == 0 and frame.pts != first:
                raise InputError(
                    f"{info.path}: segment {segment.index} cannot be decoded alone "
                    f"(seeking to pts {segment.seek_pts} reached pts {frame.pts})"
                )
            planes = frame_to_planes(frame, info)
            pts, duration = task.pts[taken], task.durations[taken]
            yield HostFrame(segment.start + taken, pts, duration, planes, taken in task.cuts)
            taken += 1
