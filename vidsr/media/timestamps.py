"""Repair the timestamps a muxer would reject, as ``ffmpeg`` does, so that a damaged but
decodable input is encoded to the end instead of aborting the run.

Two repairs, each counted and logged (once per stream, then at debug level):

* :class:`FrameStamps`: a decoded video frame whose pts is at or before the previous
  frame's (a duplicated or garbled timestamp) is moved one tick past it, or one tick of
  the encoder's coarser time base for encoders on a frame grid (MPEG-1/2: see
  :func:`grid_step`). Frames keep their decode order.
* :class:`PacketStamps`: a copied packet (audio, subtitles) whose decode timestamp goes
  backwards, or repeats where the output container needs it strictly increasing, is
  re-stamped one tick after the previous one (its pts moved with it where it would fall
  before its dts), as ``ffmpeg``'s "non-monotonic DTS ... changing to" does.

* :class:`Discontinuities`: in formats whose timestamps may restart (MPEG-TS: two
  recordings ``cat``-ed together), a restart is joined up: the rest of the file, every
  stream, is moved on to continue where the timeline stood, as ``ffmpeg`` does with such
  files (it leaves a gap; this does not), instead of squeezing it into one-tick steps.
* :class:`FrameGrid`: for containers that store a frame index instead of timestamps
  (AVI), each frame is put in its slot on a grid of one tick per frame.

Timestamps are integers in each stream's own time base.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction

import av

log = logging.getLogger(__name__)

# Containers whose muxer accepts equal consecutive decode timestamps (FFmpeg's
# AVFMT_TS_NONSTRICT); every other one needs them strictly increasing.
NONSTRICT_CONTAINERS = frozenset({"matroska", "webm"})


def grid_step(codec_time_base: Fraction | None, time_base: Fraction) -> int:
    """The least pts step, in ``time_base`` ticks, that keeps two frames apart in an
    encoder whose time base is ``codec_time_base`` (``None``: the stream's own, 1 tick).

    MPEG-2 encodes in whole frames (1/25 s): two frames 1 ms apart round to one pts there,
    which the encoder refuses."""
    if codec_time_base is None or codec_time_base <= time_base:
        return 1
    return math.ceil(codec_time_base / time_base)


class FrameStamps:
    """Makes decoded video pts strictly increasing (in the stream's time base).

    Args:
        step: how far past the previous pts a repaired frame is moved (see
            :func:`grid_step`); a frame that is after the previous one is left alone.
    """

    def __init__(self, step: int = 1) -> None:
        self.repairs = 0
        self._step = step
        self._last: int | None = None

    def fix(self, pts: int) -> int:
        """``pts``, or ``step`` ticks after the previous frame's when it is not after it."""
        if self._last is not None and pts <= self._last:
            self.repairs += 1
            new = self._last + self._step
            _log_repair(
                self.repairs,
                "video frame pts %d is not after the previous frame's (%d): moved to %d",
                pts,
                self._last,
                new,
            )
            pts = new
        self._last = pts
        return pts


class PacketStamps:
    """Keeps each copied stream's decode timestamps as the output muxer needs them.

    Args:
        container_format: the output's FFmpeg format name (decides whether equal
            consecutive dts are allowed, see :data:`NONSTRICT_CONTAINERS`).
    """

    def __init__(self, container_format: str) -> None:
        self.repairs = 0
        self._step = 0 if container_format in NONSTRICT_CONTAINERS else 1
        self._last: dict[int, int] = {}

    def fix(self, stream_index: int, packet: av.Packet) -> None:
        """Re-stamp ``packet`` (of input stream ``stream_index``, timestamps in its
        input time base) in place when its dts would go backwards or repeat."""
        dts = packet.dts
        if dts is None:
            return
        last = self._last.get(stream_index)
        if last is not None and dts < last + self._step:
            self.repairs += 1
            new = last + self._step
            _log_repair(
                self.repairs,
                "stream #%d: packet dts %d is not after the previous one (%d): re-stamped to %d",
                stream_index,
                dts,
                last,
                new,
            )
            shift = new - dts
            packet.dts = new
            if packet.pts is not None:
                packet.pts = max(packet.pts + shift, new)
            dts = new
        self._last[stream_index] = dts


# FFmpeg's AVFMT_TS_DISCONT: the format allows timestamp discontinuities (MPEG-TS and
# MPEG-PS); only there is a restart joined rather than repaired frame by frame.
TS_DISCONT_FLAG = 0x0200
# A decode time this far behind its stream's last one is a restart, not reordering.
RESTART_SECONDS = Fraction(1)


class Discontinuities:
    """Joins up timelines that restart, for the packets of all streams of one file in
    demux order (timestamps in each packet's own time base).

    A packet whose dts lies more than :data:`RESTART_SECONDS` before its stream's last
    one is held back until the next packet of that stream: when that one is behind as
    well, near the first, the timeline restarted. The first stream to restart opens a
    new part, moved by an offset that puts it right after the latest end of a packet so
    far; each other stream moves to that part (the same offset: they stay in sync) where
    it restarts in its turn (demuxers hand out the streams' last packets before a join
    at different points). Otherwise it was a single garbled packet, passed on as it is
    (for :class:`PacketStamps` / :class:`FrameStamps`). ``joins`` counts the parts joined.
    """

    def __init__(self) -> None:
        self.joins = 0
        self._offsets = [Fraction(0)]  # seconds added to the packets of each part
        self._part: dict[int, int] = {}  # per stream: the part it is in
        self._last: dict[int, Fraction] = {}  # per stream: last dts, seconds, moved
        self._end: Fraction | None = None  # latest dts + duration, seconds, moved
        self._held: list[av.Packet] = []

    def push(self, packet: av.Packet) -> list[av.Packet]:
        """The packets to pass on now, in order (``packet`` and any held before it)."""
        if packet.dts is None or packet.time_base is None:
            return [packet]
        index = packet.stream.index
        time = self._time(packet)
        held = next((h for h in self._held if h.stream.index == index), None)
        last = self._last.get(index)
        behind = last is not None and time < last - RESTART_SECONDS
        if held is not None:
            if behind and abs(time - self._time(held)) < RESTART_SECONDS:
                self._join(held)
            return self._release() + self.push(packet)  # joined, or a lone garbled one
        if behind:
            self._held.append(packet)
            return []
        self._seen(packet)
        return [packet]

    def flush(self) -> list[av.Packet]:
        """The packets still held back, at the end of the file."""
        return self._release()

    def _time(self, packet: av.Packet) -> Fraction:
        """``packet``'s dts in seconds, moved with its stream's part."""
        return packet.dts * packet.time_base + self._offsets[self._part.get(packet.stream.index, 0)]

    def _join(self, first: av.Packet) -> None:
        """Move ``first``'s stream (a restart, at ``first``) to the next part, opening it
        so that ``first`` comes right after the end when no other stream has."""
        index = first.stream.index
        part = self._part.get(index, 0) + 1
        if part == len(self._offsets):
            assert self._end is not None
            gap = self._end - self._time(first)
            self._offsets.append(self._offsets[-1] + gap)
            self.joins += 1
            log.warning(
                "the timestamps restart at packet dts %d of stream #%d (files joined end "
                "to end?): the rest is moved on by %.3f s to continue the timeline",
                first.dts,
                index,
                float(gap),
            )
        self._part[index] = part

    def _release(self) -> list[av.Packet]:
        """Held packets, moved with their parts, in arrival order."""
        out, self._held = self._held, []
        for packet in out:
            self._seen(packet)
        return out

    def _seen(self, packet: av.Packet) -> None:
        """Move ``packet`` with its stream's part and note where its stream stands."""
        tb = packet.time_base
        ticks = round(self._offsets[self._part.get(packet.stream.index, 0)] / tb)
        if ticks:
            packet.dts += ticks
            if packet.pts is not None:
                packet.pts += ticks
        time = packet.dts * tb
        self._last[packet.stream.index] = time
        end = time + (packet.duration or 0) * tb
        self._end = end if self._end is None else max(self._end, end)


# A frame further than this share of a frame from its grid slot is variable timing, not
# the rounding of a constant rate to the input's time base (29.97 fps in 1 ms ticks is
# off by at most 0.015 of a frame).
OFF_GRID = Fraction(1, 10)


class FrameGrid:
    """Stamps frames on a grid of one tick per frame at ``rate`` (time base ``1 / rate``),
    as AVI stores them: each frame goes in the slot nearest its time, or the next free
    one. Gaps of whole frames are kept (the muxer fills them with empty chunks, which
    show the previous frame); timing between the slots cannot be: the first frame
    that falls off the grid is warned about once (``moved`` counts them).

    Args:
        time_base: the time base of the pts given to :meth:`stamp`.
        rate: the grid's frame rate (the input's, its average one for variable timing).
        origin: the input's start, in ``time_base`` ticks: the grid is laid from there
            (a transport stream starting at 1.4213 s is not "off the grid"), the same
            for a resumed run as for the one it continues.
        container: the container's name, for the warning.
    """

    def __init__(
        self, time_base: Fraction, rate: Fraction, origin: int = 0, container: str = "AVI"
    ) -> None:
        self.time_base = 1 / Fraction(rate)
        self.moved = 0
        self._ticks = Fraction(time_base) * Fraction(rate)  # grid slots per input tick
        self._origin = origin
        self._origin_slot = round(origin * self._ticks)
        self._rate = Fraction(rate)
        self._container = container
        self._last: int | None = None

    def stamp(self, pts: int) -> int:
        """The slot (a pts in :attr:`time_base`) of the frame at ``pts`` input ticks."""
        exact = self._origin_slot + (pts - self._origin) * self._ticks
        slot = round(exact)
        if self._last is not None and slot <= self._last:
            slot = self._last + 1
        if abs(slot - exact) > OFF_GRID:
            self.moved += 1
            if self.moved == 1:
                log.warning(
                    "%s cannot keep variable frame timing: frames are written at %s fps "
                    "(the average rate), each in the nearest free slot (the frame at %.3f s "
                    "shows at %.3f s); use .mkv or .mp4 output to keep the timing",
                    self._container,
                    _rate_text(self._rate),
                    float(exact / self._rate),
                    float(slot / self._rate),
                )
        self._last = slot
        return slot


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"


def _log_repair(count: int, message: str, *args: object) -> None:
    """The first repair as a warning, the rest at debug level (a damaged file can have
    thousands; the run summary counts them)."""
    if count == 1:
        log.warning("repairing timestamps: " + message, *args)
    else:
        log.debug(message, *args)
