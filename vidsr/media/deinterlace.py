"""Deinterlace decoded frames before the model: FFmpeg's ``bwdif`` filter through PyAV's
filter graph.

Two modes (``--deinterlace frame|field``):

* ``frame``: one progressive frame per interlaced frame (bwdif ``send_frame``); the
  frame rate, frame count and timestamps stay the input's.
* ``field``: one progressive frame per field (bwdif ``send_field``), so twice the frames
  at twice the rate (50i becomes 50p), each field at its own time: the second field of a
  frame sits half a frame interval after the first.

Timestamps come back in the input stream's time base (bwdif halves the time base;
rescaling back is exact when the frame interval is an even number of
ticks, and rounds to the nearest tick otherwise). The filter holds one frame back to look
ahead, so :meth:`Deinterlacer.flush` must be called at the end.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction

import av
import av.filter

from vidsr.config import DEINTERLACE_MODES, Deinterlace
from vidsr.media.probe import VideoInfo

DeinterlaceMode = Deinterlace
__all__ = ["DEINTERLACE_MODES", "DeinterlaceMode", "Deinterlacer", "deinterlaced_info"]
log = logging.getLogger(__name__)
_BWDIF_MODE = {"frame": "send_frame", "field": "send_field"}
# FFmpeg's AVFieldOrder numbers, for tagging an output that keeps woven fields.
FIELD_ORDER_CODES = {"progressive": 1, "tt": 2, "bb": 3, "tb": 4, "bt": 5}


def plan_interlace(info: VideoInfo, mode: DeinterlaceMode | None) -> VideoInfo:
    """The description of the frames the model gets from ``info``'s input, warning once
    about interlaced input that is not deinterlaced (it is upscaled as woven fields and
    the output keeps the input's field order tag) and about ``mode`` on an input tagged
    progressive (deinterlaced anyway, as asked)."""
    if mode is None:
        if info.interlaced:
            log.warning(
                "%s is interlaced (field order %s): it is upscaled as it is, so "
                "moving edges will comb; add --deinterlace (one frame per frame) or "
                "--deinterlace field (one per field, twice the frame rate)",
                info.path.name,
                info.field_order,
            )
        return info
    if not info.interlaced:
        log.warning(
            "%s is tagged progressive; deinterlacing it anyway (--deinterlace %s)",
            info.path.name,
            mode,
        )
    return deinterlaced_info(info, mode)


def deinterlaced_info(info: VideoInfo, mode: DeinterlaceMode) -> VideoInfo:
    """What the frames look like after deinterlacing ``info``'s: progressive, and in
    ``field`` mode at twice the rate and count."""
    if mode == "frame":
        return replace(info, field_order="progressive")
    return replace(
        info,
        field_order="progressive",
        frame_rate=info.frame_rate * 2,
        frame_count=info.frame_count * 2 if info.frame_count is not None else None,
    )


class Deinterlacer:
    """A bwdif filter graph for frames of one size and format.

    Args:
        mode: ``frame`` (one frame per frame) or ``field`` (one frame per field).
        field_order: the input's field order (``tt``/``tb``: top field first; ``bb``/``bt``:
            bottom first; anything else: read from each frame's flags).
        time_base: the input stream's time base; frames in and out use it.
    """

    def __init__(
        self,
        mode: DeinterlaceMode,
        width: int,
        height: int,
        pix_fmt: str,
        time_base: Fraction,
        field_order: str = "tt",
    ) -> None:
        parity = {"tt": "tff", "tb": "tff", "bb": "bff", "bt": "bff"}.get(field_order, "auto")
        self.mode = mode
        self.time_base = time_base
        self._graph = av.filter.Graph()
        source = self._graph.add_buffer(
            width=width, height=height, format=pix_fmt, time_base=time_base
        )
        bwdif = self._graph.add("bwdif", f"mode={_BWDIF_MODE[mode]}:parity={parity}:deint=all")
        sink = self._graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        self._graph.configure()
        self._out_tb = time_base / 2  # bwdif's output link time base, in both modes

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Feed one decoded frame; return the deinterlaced frames now ready (none for the
        first, which the filter holds to look ahead; one or two after), with ``pts`` and
        ``duration`` in the input time base."""
        frame.time_base = self.time_base
        self._graph.push(frame)
        return self._pull()

    def flush(self) -> list[av.VideoFrame]:
        """The frames still held at the end of the stream."""
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> list[av.VideoFrame]:
        out: list[av.VideoFrame] = []
        while True:
            try:
                frame = self._graph.pull()
            except (BlockingIOError, EOFError, av.error.EOFError):
                return out
            except av.error.FFmpegError as e:
                if getattr(e, "errno", None) in (11, 35):  # EAGAIN: needs more input
                    return out
                raise
            ratio = (frame.time_base or self._out_tb) / self.time_base
            if frame.pts is not None:
                frame.pts = round(frame.pts * ratio)
            if frame.duration:
                frame.duration = max(1, round(frame.duration * ratio))
            frame.time_base = self.time_base
            out.append(frame)
