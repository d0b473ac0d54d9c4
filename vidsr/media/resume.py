"""Resuming an interrupted ``vidsr upscale``.

An interrupted run leaves its output flushed under the ``.partial`` name, plus a small
JSON file beside it recording the settings that produced it. To resume, the partial's
complete groups of pictures (every video packet before its last keyframe, in decode
order: x264 and the other encoders vidsr drives use closed GOPs) are copied, without
re-encoding, into a new output, and the run continues from the first source frame they do not cover
with a fresh encoder, which starts on a keyframe. Timestamps are the source's own, so
the result stays in sync with the audio and has the same frame count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from vidsr.config import RunConfig
from vidsr.errors import InputError
from vidsr.media.probe import VideoInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePoint:
    """What an earlier run already finished.

    Attributes:
        path: the earlier partial output, to copy packets from.
        frames_done: how many leading video packets (in decode order) to copy: the
            complete GOPs, which cover exactly the first ``frames_done`` source frames.
    """

    path: Path
    frames_done: int


# Settings added after the first release, with the value every run had before them, so a
# partial written by an earlier vidsr still resumes when the new option is left off.
_LATER_SETTINGS = {
    "self_ensemble": False,
    "deinterlace": None,
    "precision": "fp32",  # what every run computed in before --precision existed
    "resampler": "exact",
}


def settings_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def run_settings(info: VideoInfo, config: RunConfig) -> dict:
    """The settings that must match for a partial output to be continued."""
    stat = info.path.stat()
    enc = config.encode
    return {
        "input": str(info.path.resolve()),
        "input_size": stat.st_size,
        "input_mtime": int(stat.st_mtime),
        "model": config.model,
        "scale": config.scale,
        "colour": config.colour,
        "tile": config.tile,
        "self_ensemble": config.self_ensemble,
        "deinterlace": config.deinterlace,
        "precision": config.precision,
        "resampler": config.resampler,
        "codec": enc.codec,
        "crf": enc.crf,
        "preset": enc.preset,
        "pix_fmt": enc.pix_fmt,
        "gop": enc.gop,
    }


def write_settings(partial: Path, settings: dict) -> None:
    settings_path(partial).write_text(json.dumps(settings, indent=1))


def remove_settings(partial: Path) -> None:
    settings_path(partial).unlink(missing_ok=True)


def read_resume_point(partial: Path, settings: dict) -> ResumePoint | None:
    """The finished part of ``partial``, or ``None`` when there is nothing to resume.

    Raises:
        InputError: the partial was made with other settings (resuming would mix them).
    """
    if not partial.exists():
        return None
    recorded_path = settings_path(partial)
    if not recorded_path.exists():
        raise InputError(
            f"{partial} has no settings record; "
            f"run with --overwrite instead of --resume to start again"
        )
    try:
        recorded = {**_LATER_SETTINGS, **json.loads(recorded_path.read_text())}
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise InputError(
            f"cannot read the settings record {recorded_path} ({e}); "
            f"run with --overwrite instead of --resume to start again"
        ) from e
    changed = sorted(k for k in settings if recorded.get(k) != settings[k])
    if changed:
        raise InputError(
            f"cannot resume {partial}: it was made with other settings ({', '.join(changed)}); "
            f"rerun with the same options, or remove it"
        )
    frames = finished_frames(partial)
    return ResumePoint(partial, frames) if frames > 0 else None


def finished_frames(partial: Path) -> int:
    """How many leading video packets of ``partial`` form complete GOPs: those before its
    last keyframe (0 when it cannot be read, or has not one complete GOP).

    A hard-killed run leaves its last fragment or cluster cut short: reading stops at the
    first error there, and only what came before counts."""
    last_keyframe = 0
    try:
        with av.open(str(partial)) as container:
            stream = container.streams.video[0]
            try:
                for i, packet in enumerate(p for p in container.demux(stream) if p.size > 0):
                    if packet.is_keyframe:
                        last_keyframe = i
            except (av.error.FFmpegError, OSError) as e:
                log.info("%s ends in an incomplete part (%s); resuming before it", partial, e)
    except (av.error.FFmpegError, OSError, IndexError) as e:
        log.warning("cannot read %s (%s); starting over", partial, e)
        return 0
    return last_keyframe


def first_frame_time(path: Path, stream_index: int | None = None) -> Fraction | None:
    """Presentation time in seconds of the first decoded frame of ``path``'s video stream
    (``stream_index``, or the first); ``None`` when no frame decodes."""
    with av.open(str(path)) as container:
        stream = (
            container.streams[stream_index]
            if stream_index is not None
            else container.streams.video[0]
        )
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                return Fraction(frame.pts) * frame.time_base
            return None
    return None


def _timeline_shift(
    point: ResumePoint, src_stream: av.stream.Stream, source_start: Fraction | None
) -> int:
    """How far the partial's timeline lies after the source's, in ``src_stream`` ticks.

    MPEG-TS, NUT and AVI cannot store a negative decode time, so their muxer moved every
    timestamp of the partial later by the encoder's B-frame delay. The copied packets are
    moved back onto the source's timeline; the muxer then shifts them (and the audio) again
    the same way it shifts a run that was not interrupted."""
    partial_start = first_frame_time(point.path)
    if source_start is None or partial_start is None:
        return 0
    return round((partial_start - source_start) / src_stream.time_base)


def copy_packets(
    point: ResumePoint,
    stream: av.video.stream.VideoStream,
    container: av.container.OutputContainer,
    source_start: Fraction | None = None,
) -> int:
    """Mux the first ``point.frames_done`` video packets of the earlier partial into
    ``stream`` without re-encoding them; returns the last dts written, in the stream's
    time base. ``source_start`` is the presentation time (seconds) of the input's first
    frame: the copied packets are put on the input's timeline (see ``_timeline_shift``).

    MP4 and Matroska store H.264/HEVC length-prefixed, while a fresh encoder hands the
    muxer Annex-B packets that it converts itself; the copied packets are put in the
    same Annex-B form first (FFmpeg's ``*_mp4toannexb`` filter), or the muxer would
    convert them twice.
    """
    last_dts: int | None = None  # in the source stream's time base until muxed
    with av.open(str(point.path)) as source:
        src_stream = source.streams.video[0]
        name = src_stream.codec_context.name
        bsf = (
            BitStreamFilterContext(f"{name}_mp4toannexb", in_stream=src_stream)
            if name in ("h264", "hevc")
            else None
        )
        shift = _timeline_shift(point, src_stream, source_start)
        copied = 0
        for packet in source.demux(src_stream):
            if packet.size == 0:
                continue
            if copied == point.frames_done:
                break
            if shift:
                _move(packet, -shift)
            for out_packet in bsf.filter(packet) if bsf is not None else (packet,):
                _ensure_increasing_dts(out_packet, last_dts)
                last_dts = out_packet.dts
                out_packet.stream = stream
                container.mux(out_packet)
            copied += 1
        if last_dts is None:
            return -(1 << 62)
        # mux() rebased the last packet to the output stream's time base in place
        return int(last_dts * src_stream.time_base / stream.time_base)


def _move(packet: av.Packet, ticks: int) -> None:
    """Add ``ticks`` to ``packet``'s timestamps (those it has)."""
    if packet.pts is not None:
        packet.pts += ticks
    if packet.dts is not None:
        packet.dts += ticks


def _ensure_increasing_dts(packet: av.Packet, last_dts: int | None) -> None:
    """Give ``packet`` a decode timestamp after ``last_dts``. Demuxers leave dts unset on
    the first packets of a stream with B-frames (Matroska stores presentation times only);
    the muxer needs them increasing, and at or before pts where possible."""
    if packet.dts is not None and (last_dts is None or packet.dts > last_dts):
        return
    if last_dts is None:
        packet.dts = packet.pts if packet.pts is not None else 0
    else:
        packet.dts = last_dts + 1
