"""Join finished segment files into the output, by stream copy (no re-encode).

The output is made by the same :class:`~vidsr.media.sinks.FileSink` a single-machine run
uses (container, metadata, chapters, attachments, every audio and subtitle stream,
copied or re-encoded as the run asks, with the same timestamp repairs), except that its
video stream is copied from the segments instead of encoded: :class:`CopySink`. Video
and copied packets are interleaved by time as they are read, so memory stays constant.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av

from vidsr.errors import EncodeError, InputError
from vidsr.media.probe import VideoInfo
from vidsr.media.sinks import FileSink, OutputPlan


class CopySink(FileSink):
    """A :class:`FileSink` whose video stream is copied from ``template`` (a segment's
    video stream): :meth:`mux_video` takes its packets."""

    def __init__(
        self, plan: OutputPlan, info: VideoInfo, write_path: Path, template: av.stream.Stream
    ) -> None:
        super().__init__(plan, info, write_path)
        self._template = template

    def _add_video(self, out: av.container.OutputContainer) -> av.video.stream.VideoStream:
        """The video stream, copied from the template, with the tags a run writes."""
        video = out.add_stream_from_template(self._template)
        video.time_base = self.info.time_base
        self._tag_video(video)
        return video

    def mux_video(self, packet: av.Packet) -> None:
        """Copy one encoded video packet (timestamps in its own time base)."""
        assert self._video is not None, "open() first"
        packet.stream = self._video
        try:
            self._mux_video(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot write {self.plan.path}: {e}") from e
        self.frames_written += 1

    def close(self) -> None:
        """Write the trailer: nothing to flush, the video packets are copies."""
        self._video = None
        super().close()


def _when(packet: av.Packet) -> Fraction:
    """Where a packet goes in the interleaving: its decode time in seconds."""
    stamp = packet.dts if packet.dts is not None else packet.pts or 0
    return Fraction(stamp) * (packet.time_base or Fraction(1))


def _video_packets(segments: Sequence[Path]) -> Iterator[tuple[Fraction, int, av.Packet]]:
    for path in segments:
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0 and packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                yield _when(packet), -1, packet


def _copied_packets(
    source: av.container.InputContainer, passthrough: tuple[int, ...]
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    if not passthrough:
        return
    for packet in source.demux([source.streams[i] for i in passthrough]):
        if packet.dts is not None and packet.size > 0:
            yield _when(packet), packet.stream.index, packet


def stitch(segments: Sequence[Path], plan: OutputPlan, info: VideoInfo, write_path: Path) -> int:
    """Write ``write_path``: the segments' video, in order, and the source's other
    streams as ``plan`` has them. Returns the number of video packets written.

    Raises:
        InputError: the source cannot be read. EncodeError: the output cannot be written.
    """
    if not segments:
        raise EncodeError(f"{plan.path}: no segment to join")
    with av.open(str(segments[0])) as first:
        sink = CopySink(plan, info, write_path, first.streams.video[0])
        sink.open()
    try:
        with av.open(str(info.path), metadata_errors="replace") as source:
            merged = heapq.merge(
                _video_packets(segments),
                _copied_packets(source, plan.passthrough),
                key=lambda item: (item[0], item[1]),
            )
            for _when_, index, packet in merged:
                if index < 0:
                    sink.mux_video(packet)
                else:
                    sink.mux_packet(index, packet)
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot read {info.path} or its segments: {e}") from e
    finally:
        sink.close()
    return sink.frames_written
