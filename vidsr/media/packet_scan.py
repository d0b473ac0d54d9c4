"""Read a file's packets without decoding them: how many packets the video stream has,
how many an edit list discards, and where the video stream and the file's content end.

The video stream's own end (its last packet's pts plus duration) is what an expected
frame count needs: a file's duration is that of its longest stream, often the audio. The
file's content end (the latest end of any stream's packets) tells a whole file from a
truncated one, whose packets stop before its header's duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class PacketScan:
    """What a demux of a file found. Times are seconds on the file's timeline (the
    streams' own timestamps, start offset included); ``None`` where no packet said.

    ``packets`` and ``discarded`` count the video stream's non-empty packets and those an
    edit list marks to be decoded and dropped (``None`` and 0 for a scan of the file's
    tail only); ``video_end`` is the end of the video stream's last packet, ``file_end``
    the latest end of any stream's packet.
    """

    packets: int | None
    discarded: int
    video_end: float | None
    file_end: float | None


def scan_packets(path: Path, index: int, step: float) -> PacketScan | None:
    """Demux all of ``path``, counting video stream ``index``'s packets. ``step`` (the
    frame duration in seconds) is taken for a packet that gives no duration. ``None``
    when the file cannot be read to its end."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return _scan(container, index, step, count=True)
    except (av.error.FFmpegError, OSError):
        return None


def scan_tail(path: Path, index: int, step: float, from_seconds: float) -> PacketScan | None:
    """Demux ``path`` from the video keyframe at or before ``from_seconds`` (on the file's
    timeline) to its end, for the ends only: a large file's whole demux takes too long.
    ``None`` when the file cannot be read or seeked."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            stream = container.streams[index]
            if not stream.time_base:
                return None
            target = max(0, int(from_seconds / stream.time_base))
            container.seek(target, backward=True, any_frame=False, stream=stream)
            return _scan(container, index, step, count=False)
    except (av.error.FFmpegError, OSError):
        return None


def _scan(
    container: av.container.InputContainer, index: int, step: float, *, count: bool
) -> PacketScan:
    packets = discarded = 0
    ends: dict[int, int] = {}  # stream index -> latest packet end, in its time base
    bare: dict[int, int] = {}  # the same for packets without a duration
    for packet in container.demux():
        if packet.size == 0:
            continue
        stream = packet.stream.index
        if stream == index:
            packets += 1
            discarded += bool(packet.is_discard)
        pts = packet.pts
        if pts is None:
            continue
        table = ends if packet.duration else bare
        end = pts + (packet.duration or 0)
        if end > table.get(stream, end - 1):
            table[stream] = end
    video_end: float | None = None
    file_end: float | None = None
    for stream in container.streams:
        pad = step if stream.index == index else 0.0
        end = _stream_end(stream, ends.get(stream.index), bare.get(stream.index), pad)
        if end is None:
            continue
        if stream.index == index:
            video_end = end
        file_end = end if file_end is None else max(file_end, end)
    return PacketScan(packets if count else None, discarded, video_end, file_end)


def _stream_end(stream, timed: int | None, bare: int | None, pad: float) -> float | None:
    """Seconds where ``stream``'s packets end: ``timed`` is the latest end of those that
    give a duration, ``bare`` the latest pts of those that do not (``pad`` added)."""
    tb = stream.time_base
    if not tb:
        return None
    candidates = [float(timed * tb)] if timed is not None else []
    if bare is not None:
        candidates.append(float(bare * tb) + pad)
    return max(candidates, default=None)
