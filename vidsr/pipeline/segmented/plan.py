"""Plan the segments of one long input: where each starts, and which frames it holds.

A scan of the source (:func:`scan_source`) records every frame's timestamp and duration
exactly as a single-machine run decodes them, and where shots start (the same streaming
detector, fed the same planes, as :func:`vidsr.pipeline.planning.with_shots`). A demux of
the video packets gives the keyframes. :func:`plan_segments` then cuts the frames into
about ``count`` segments: at shot cuts where there are some near the ideal place, else at
a keyframe inside a long shot. Each segment decodes alone, from the last keyframe at or
before its first frame (its *seek point*).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import av

from vidsr.config import RunConfig
from vidsr.errors import InputError
from vidsr.media.planes import HostFrame
from vidsr.media.probe import VideoInfo
from vidsr.media.sources import FileSource
from vidsr.pipeline.planning import with_shots


@dataclass(frozen=True)
class FrameTable:
    """Every frame of the input as a single-machine run sees it, in display order.

    Attributes:
        pts / durations: per frame, in the video stream's time base (durations 0 when
            unknown).
        cuts: indices of the frames that start a shot (``--color shot``; else empty).
        keyframes: indices of the frames decoding can start at (sorted; 0 first).
        exact: every decoded timestamp was the file's own (none repaired or missing), so
            a segment finds its frames by timestamp; otherwise only one segment is made.
    """

    pts: tuple[int, ...]
    durations: tuple[int, ...]
    cuts: frozenset[int]
    keyframes: tuple[int, ...]
    exact: bool


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` to ``end`` (exclusive) of the input.

    ``seek_pts`` is the pts of the keyframe it decodes from (``None``: the file's start);
    ``continues_shot`` is true when it starts inside a shot that the previous segment
    began, so its colour matcher goes on from that segment's state."""

    index: int
    start: int
    end: int
    seek_pts: int | None
    continues_shot: bool

    @property
    def frames(self) -> int:
        return self.end - self.start


def scan_source(info: VideoInfo, config: RunConfig) -> FrameTable:
    """Decode the input once (no upscaling) and describe its frames.

    Raises:
        InputError: the file cannot be read, or no frame decodes.
    """
    source = FileSource(info)
    items = with_shots(source.items, config, info.yuv.bits)
    pts: list[int] = []
    durations: list[int] = []
    cuts: set[int] = set()
    for item in items(threading.Event()):
        if not isinstance(item, HostFrame):
            continue
        if item.new_shot:
            cuts.add(len(pts))
        pts.append(item.pts)
        durations.append(item.duration)
    if not pts:
        raise InputError(f"{info.path}: no frame could be decoded")
    keys = _keyframe_pts(info)
    keyframes = tuple(sorted({0} | {i for i, p in enumerate(pts) if p in keys}))
    exact = source.stamps.repairs == 0 and source.corrupt_packets == 0
    exact = exact and not source.read_error and source.discarded == 0
    return FrameTable(tuple(pts), tuple(durations), frozenset(cuts), keyframes, exact)


def _keyframe_pts(info: VideoInfo) -> set[int]:
    """Presentation timestamps of the video stream's keyframe packets (a demux, no decode)."""
    try:
        with av.open(str(info.path), metadata_errors="replace") as container:
            video = container.streams[info.stream_index]
            return {p.pts for p in container.demux(video) if p.is_keyframe and p.pts is not None}
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot read {info.path}: {e}") from e


def plan_segments(table: FrameTable, count: int, *, shot_colour: bool) -> list[Segment]:
    """Cut ``table``'s frames into about ``count`` segments (never more than the places
    there are to cut).

    A boundary goes at a shot cut (any frame: the segment decodes from the keyframe
    before it) or at a keyframe. Walking from the start, each boundary is the candidate
    nearest the ideal position (``total / count`` frames on), cuts preferred within half a
    segment of it. ``shot_colour``: segments starting at a keyframe inside a shot are
    marked ``continues_shot``.
    """
    total = len(table.pts)
    if count < 1:
        raise ValueError(f"segment count must be >= 1, got {count}")
    starts = [0]
    if table.exact and count > 1:
        starts += _boundaries(table, total, count)
    segments = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else total
        key = table.keyframes[bisect.bisect_right(table.keyframes, start) - 1]
        seek = None if start == 0 else table.pts[key]
        inside = shot_colour and start > 0 and start not in table.cuts
        segments.append(Segment(index, start, end, seek, inside))
    return segments


def _boundaries(table: FrameTable, total: int, count: int) -> list[int]:
    """The starts of segments 2 onwards (see :func:`plan_segments`)."""
    length = total / count
    cuts = sorted(c for c in table.cuts if c > 0)
    keys = [k for k in table.keyframes if k > 0]
    chosen: list[int] = []
    start = 0
    while True:
        ideal = start + length
        if ideal >= total - length / 2:
            return chosen
        near_cuts = [c for c in cuts if start < c and abs(c - ideal) <= length / 2]
        later_keys = [k for k in keys if k >= start + length / 2]  # no sliver segments
        pool = near_cuts or later_keys or [f for f in keys + cuts if f > start]
        if not pool:
            return chosen
        start = min(pool, key=lambda f: (abs(f - ideal), f))
        if start >= total:
            return chosen
        chosen.append(start)
