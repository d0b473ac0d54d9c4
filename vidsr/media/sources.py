"""Frame sources: decode a file with PyAV into host-side planar YUV frames.

The decode thread runs :meth:`FileSource.items`, which yields, in file order, either a
:class:`HostFrame` (a decoded video frame as numpy planes) or a :class:`StreamPacket` of another
stream (audio, subtitles) to be copied to the output untouched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.codec.hwaccel import HWAccel

from vidsr.errors import InputError
from vidsr.media.decoding import decode_first_video
from vidsr.media.deinterlace import DeinterlaceMode, Deinterlacer
from vidsr.media.planes import HostFrame, Planes, plane_to_array
from vidsr.media.probe import VideoInfo
from vidsr.media.timestamps import TS_DISCONT_FLAG, Discontinuities, FrameStamps

log = logging.getLogger(__name__)


@dataclass
class StreamPacket:
    """A packet of a copied stream. ``stream_index`` is read while the input container is
    open: the packet must not reach back to its input stream once decoding has ended."""

    stream_index: int
    packet: av.Packet


def frame_to_planes(frame: av.VideoFrame, info: VideoInfo) -> Planes:
    """Convert a decoded frame to the work format's three planes (see :class:`HostFrame`)."""
    name = frame.format.name
    if name != info.work_format and not (
        name.startswith("yuvj") and name[4:] == info.work_format[3:]
    ):
        frame = frame.reformat(
            format=info.work_format,
            dst_colorspace=info.yuv.matrix,
            dst_color_range=2 if info.yuv.full_range else 1,
        )
    dtype = np.uint8 if info.yuv.bits == 8 else np.dtype("<u2")
    y, u, v = (plane_to_array(p, dtype) for p in frame.planes[:3])
    return y, u, v


class FileSource:
    """Decodes the video stream of a probed file and forwards the other streams' packets.

    Args:
        info: the probe result for the file.
        passthrough: input stream indices whose packets are forwarded for copying.
        threads: FFmpeg decoder threads (0 = FFmpeg decides).
        skip_frames: decode but do not yield the first frames (already done by a
            resumed run); other streams' packets are still all yielded.
        hwaccel: PyAV hardware decoding settings (NVDEC), ``None`` for software; frames
            are downloaded to host memory and converted to the work format.
        deinterlace: ``frame`` or ``field`` to deinterlace frames before they are
            yielded (:mod:`vidsr.media.deinterlace`; ``field`` doubles the frames, and
            ``info`` then describes the input, not the output); ``None``: as decoded.
        pts_step: how far a frame whose pts repeats is moved past the previous one, in
            ``info.time_base`` ticks (:func:`~vidsr.media.timestamps.grid_step`).
    """

    def __init__(
        self,
        info: VideoInfo,
        passthrough: tuple[int, ...] = (),
        threads: int = 0,
        skip_frames: int = 0,
        hwaccel: HWAccel | None = None,
        deinterlace: DeinterlaceMode | None = None,
        pts_step: int = 1,
    ) -> None:
        self.info = info
        self.deinterlace = deinterlace
        self._deinterlacer: Deinterlacer | None = None
        self.passthrough = passthrough
        self.threads = threads
        self.skip_frames = skip_frames
        self.hwaccel = hwaccel
        self.corrupt_packets = 0
        self.frames_decoded = 0
        self.discarded = 0  # video packets an edit list marks to decode and drop
        self.end_pts: int | None = None  # end of the last decoded frame (pts + duration)
        self.read_error = False  # reading stopped at an error before the end
        self.stamps = FrameStamps(pts_step)
        self.joins = Discontinuities()  # restarts joined (MPEG-TS files cat-ed together)

    def items(self, stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
        """Yield frames and passthrough packets in file order until the end or ``stop``.

        Packets the decoder rejects as corrupt are counted in ``corrupt_packets`` and
        skipped, so the decodable rest of a damaged file still comes out. A frame whose
        pts is not after the previous one's is moved one tick past it (counted in
        ``stamps.repairs``); packets an edit list discards are counted in ``discarded``.

        Raises:
            InputError: the file cannot be opened or read.
        """
        info = self.info
        try:
            container = av.open(str(info.path), metadata_errors="replace", hwaccel=self.hwaccel)
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(f"cannot open {info.path}: {e}") from e
        with container:
            video = container.streams[info.stream_index]
            video.thread_type = "AUTO"
            video.codec_context.thread_count = self.threads
            wanted = [video] + [container.streams[i] for i in self.passthrough]
            self._next_pts = 0
            joining = bool(container.format.flags & TS_DISCONT_FLAG)
            try:
                for demuxed in container.demux(wanted):
                    if stop.is_set():
                        return
                    for packet in self.joins.push(demuxed) if joining else (demuxed,):
                        yield from self._packet_items(packet)
                for packet in self.joins.flush():
                    yield from self._packet_items(packet)
                for frame in self._deinterlaced(None):
                    if (item := self._host_frame(frame)) is not None:
                        yield item
            except av.error.FFmpegError as e:
                if self.frames_decoded == 0:
                    raise InputError(f"cannot decode {info.path}: {e}") from e
                self.read_error = True
                log.warning(
                    "stopped reading %s after %d frames: %s", info.path, self.frames_decoded, e
                )
        if self.corrupt_packets:
            log.warning("%s: %d corrupt video packet(s) skipped", info.path, self.corrupt_packets)

    def _packet_items(self, packet: av.Packet) -> Iterator[HostFrame | StreamPacket]:
        """A passthrough packet as it is, or the frames a video packet decodes to."""
        index = packet.stream.index
        if index != self.info.stream_index:
            if packet.dts is not None and packet.size > 0:
                yield StreamPacket(index, packet)
            return
        self.discarded += bool(packet.is_discard and packet.size)
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            self.corrupt_packets += 1
            return
        for frame in self._deinterlaced(frames):
            if (item := self._host_frame(frame)) is not None:
                yield item

    def _deinterlaced(self, frames: list[av.VideoFrame] | None) -> list[av.VideoFrame]:
        """``frames`` through the deinterlacer, if any (``None``: flush it at the end)."""
        if self.deinterlace is None:
            return frames or []
        if frames is None:
            return self._deinterlacer.flush() if self._deinterlacer is not None else []
        out: list[av.VideoFrame] = []
        for frame in frames:
            if self._deinterlacer is None:
                self._deinterlacer = Deinterlacer(
                    self.deinterlace,
                    frame.width,
                    frame.height,
                    frame.format.name,
                    self.info.time_base,
                    self.info.field_order,
                )
            out += self._deinterlacer.push(frame)
        return out

    def _host_frame(self, frame: av.VideoFrame) -> HostFrame | None:
        """Stamp a decoded frame (repairing a pts that does not advance) and convert it;
        ``None`` for a frame a resumed run has already done."""
        pts = self.stamps.fix(frame.pts if frame.pts is not None else self._next_pts)
        duration = int(frame.duration or 0)
        step = self._default_duration()
        if self.deinterlace == "field":
            step = max(1, step // 2)
        self._next_pts = pts + max(duration, step)
        self.end_pts = self._next_pts
        index = self.frames_decoded
        self.frames_decoded += 1
        if index < self.skip_frames:
            return None
        return HostFrame(index, pts, duration, frame_to_planes(frame, self.info))

    def _default_duration(self) -> int:
        """One frame interval in the stream time base, for frames without timestamps."""
        return max(1, round(1 / (self.info.frame_rate * self.info.time_base)))


def iter_rgb_frames(path: Path, step: int = 1) -> Iterator[np.ndarray]:
    """Decode every ``step``-th frame of ``path``'s first video stream as ``(H, W, 3)``
    uint8 RGB (for evaluation and dataset building, which work on whole RGB frames).

    Raises:
        InputError: the file cannot be opened or decoded, or has no video stream.
    """
    for index, (frame, _rate) in enumerate(decode_first_video(path)):
        if index % step == 0:
            yield frame.to_ndarray(format="rgb24")
