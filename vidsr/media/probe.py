"""Open a video once and describe it: :class:`VideoInfo`.

Probing decodes the first frame, because some facts (rotation, colour tags of streams that
do not declare them in the container, the real pixel format) are only known from a frame.
Every failure to read becomes an :class:`~vidsr.errors.InputError` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidsr.colour.convert import AVCOL_RANGE_JPEG, MATRIX_COEFFICIENTS, YuvFormat, guess_matrix
from vidsr.errors import InputError
from vidsr.media.fields import frame_field_order
from vidsr.media.packet_scan import PacketScan, scan_packets, scan_tail
from vidsr.media.planes import chroma_shift
from vidsr.media.side_data import HdrMetadata, hdr_from_frame

log = logging.getLogger(__name__)

# Decoded pixel formats that the pipeline takes as they are: planar YUV, little-endian.
# Anything else is converted by swscale in the decode thread to the format on the right.
_DIRECT_FORMATS = {
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "yuv420p12le",
    "yuv422p12le",
    "yuv444p12le",
    "yuv420p16le",
    "yuv422p16le",
    "yuv444p16le",
}
_J_FORMATS = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


@dataclass(frozen=True)
class StreamInfo:
    """A non-video stream that is copied to the output as it is."""

    index: int
    kind: str  # "audio", "subtitle", "data", "attachment"
    codec: str
    language: str | None
    name: str | None = None  # an attachment's file name


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video.

    Sizes are in pixels of the coded frame (before any display rotation).
    ``work_format`` is the planar YUV pixel format frames are converted to for processing;
    ``yuv`` gives its matrix, range and bit depth, with ``matrix_guessed`` set when the
    file did not declare a matrix and one was chosen from the frame size.
    ``sample_aspect_ratio`` is the declared pixel shape (``None``: undeclared);
    ``video_disposition`` the video stream's disposition flags; ``chapters`` the input's
    chapters as PyAV gives them; ``hdr`` the first frame's HDR metadata, if any.
    ``duration_seconds`` is the video stream's own, from ``start_seconds`` to the end of
    its last packet, not the file's (whose longest stream may be the audio), except in a
    truncated file, where it is the header's (see :func:`video_duration`).
    """

    path: Path
    container_format: str
    width: int
    height: int
    source_format: str
    work_format: str
    yuv: YuvFormat
    matrix_guessed: bool
    time_base: Fraction
    frame_rate: Fraction
    frame_count: int | None
    frame_count_exact: bool
    duration_seconds: float | None
    rotation: int
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int
    stream_index: int
    metadata: dict[str, str] = field(default_factory=dict)
    video_metadata: dict[str, str] = field(default_factory=dict)
    other_streams: tuple[StreamInfo, ...] = ()
    sample_aspect_ratio: Fraction | None = None
    video_disposition: int = 0
    chapters: tuple[dict, ...] = ()
    hdr: HdrMetadata | None = None
    start_seconds: float = 0.0
    discarded_frames: int = 0
    field_order: str = "progressive"

    @property
    def end_seconds(self) -> float | None:
        """Where the video stream ends on the file's timeline (start plus duration)."""
        if self.duration_seconds is None:
            return None
        return self.start_seconds + self.duration_seconds

    @property
    def interlaced(self) -> bool:
        """The stream or its first frame says its frames are two woven fields."""
        return self.field_order in ("tt", "bb", "tb", "bt")

    @property
    def chroma_shift(self) -> tuple[int, int]:
        """log2 chroma subsampling ``(vertical, horizontal)`` of the work format."""
        return chroma_shift(self.work_format)


def work_format_for(name: str, bits: int) -> str:
    """The planar YUV format the pipeline converts a decoded format ``name`` to."""
    if name in _DIRECT_FORMATS:
        return name
    if name in _J_FORMATS:
        return _J_FORMATS[name]
    if name in ("nv12", "nv21"):
        return "yuv420p"
    if name in ("p010le", "p016le"):
        return "yuv420p10le" if name == "p010le" else "yuv420p16le"
    if name.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "rgba", "bgra")):
        return "yuv444p" if bits <= 8 else "yuv444p16le"
    return "yuv420p" if bits <= 8 else "yuv420p10le"


def _format_bits(fmt: av.VideoFormat) -> int:
    return max((c.bits for c in fmt.components), default=8)


def probe(path: str | Path) -> VideoInfo:
    """Describe the first video stream of ``path``.

    Raises:
        InputError: missing file, a directory, unreadable, not a media file, no video
            stream, or no decodable frame.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a directory, expected a video file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input is an empty file: {path}")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.error.PermissionError as e:
        raise InputError(f"cannot read {path}: permission denied") from e
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot open {path}: not a readable video file ({_short(e)})") from e
    with container:
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        if not videos:
            raise InputError(f"{path} has no video stream")
        stream = videos[0]
        first = _first_frame(container, stream, path)
        return _describe(path, container, stream, first)


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _first_frame(container: av.container.InputContainer, stream, path: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot decode {path}: {_short(e)}") from e
    raise InputError(f"{path} has a video stream but no decodable frame")


def _describe(path: Path, container, stream, frame: av.VideoFrame) -> VideoInfo:
    cc = stream.codec_context
    bits = _format_bits(frame.format)
    work = work_format_for(frame.format.name, bits)
    work_bits = _format_bits(av.VideoFormat(work))
    colorspace = frame.colorspace or cc.colorspace
    guessed = colorspace not in MATRIX_COEFFICIENTS
    matrix = guess_matrix(frame.height, frame.width) if guessed else colorspace
    color_range = frame.color_range or cc.color_range
    full = color_range == AVCOL_RANGE_JPEG or frame.format.name in _J_FORMATS
    if frame.format.is_rgb:
        # RGB sources are converted to limited-range YUV by swscale in the decode thread,
        # with the matrix chosen here from the frame size and written into the output tags.
        matrix, full, guessed = guess_matrix(frame.height, frame.width), False, False
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    start, declared = stream_timeline(container, stream)
    scan = scan_file(path, stream.index, float(1 / rate), start, declared)
    duration = video_duration(start, declared, scan, rate)
    frames, exact, discarded = expected_frames(stream, scan, duration, rate)
    others = tuple(
        StreamInfo(
            s.index,
            s.type,
            s.codec_context.name if s.codec_context else "unknown",
            s.metadata.get("language"),
            s.metadata.get("filename"),
        )
        for s in container.streams
        if s.index != stream.index
        and s.type in ("audio", "subtitle", "data", "attachment", "video")
    )
    sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
    return VideoInfo(
        path=path,
        container_format=container.format.name,
        width=frame.width,
        height=frame.height,
        source_format=frame.format.name,
        work_format=work,
        yuv=YuvFormat(matrix=matrix, full_range=full, bits=work_bits),
        matrix_guessed=guessed,
        time_base=stream.time_base or Fraction(1, 90000),
        frame_rate=Fraction(rate),
        frame_count=frames,
        frame_count_exact=exact,
        duration_seconds=duration,
        rotation=int(frame.rotation or 0),
        color_primaries=frame.color_primaries or cc.color_primaries,
        color_trc=frame.color_trc or cc.color_trc,
        colorspace=colorspace,
        color_range=AVCOL_RANGE_JPEG if full else (color_range or 1),
        stream_index=stream.index,
        metadata=dict(container.metadata),
        video_metadata=dict(stream.metadata),
        other_streams=others,
        sample_aspect_ratio=Fraction(sar) if sar else None,
        video_disposition=int(stream.disposition),
        chapters=tuple(container.chapters()),
        hdr=hdr_from_frame(frame),
        start_seconds=start,
        discarded_frames=discarded,
        field_order=field_order(stream, frame),
    )


def stream_timeline(container: av.container.InputContainer, stream) -> tuple[float, float | None]:
    """``(start, duration)`` of the video stream in seconds. The duration counts from the
    start: a stream's own duration does; Matroska's segment duration counts from 0, so a
    start offset (a file cut from the middle of a recording) is taken off it."""
    tb = stream.time_base
    start = 0.0
    if stream.start_time is not None and tb:
        start = float(stream.start_time * tb)
    elif container.start_time is not None:
        start = container.start_time / 1_000_000
    if stream.duration is not None and tb:
        return start, float(stream.duration * tb)
    if not container.duration:
        return start, None
    duration = container.duration / 1_000_000
    if "matroska" in container.format.name and duration > start:
        duration -= start
    return start, duration


def expected_frames(
    stream, scan: PacketScan | None, duration: float | None, rate: Fraction
) -> tuple[int | None, bool, int]:
    """``(frames, exact, discarded)``: how many frames the video stream should decode
    to, and how many packets an edit list discards (counted only where packets are).

    Exact: the container's index, or a Matroska ``NUMBER_OF_FRAMES`` statistics tag (less
    any packets an edit list discards, for small files where they are counted). Else, in
    files up to :data:`COUNT_PACKETS_BYTES`, the video packets of ``scan`` (a fast demux
    without decoding: right for variable frame rates and timestamp gaps, off for
    field-coded streams); else ``duration x rate``, ``duration`` being the video
    stream's own (:func:`video_duration`).
    """
    counted = scan is not None and scan.packets is not None
    discarded = scan.discarded if scan is not None and counted else 0
    if stream.frames:
        return max(1, stream.frames - discarded), True, discarded
    tagged = _tag_frame_count(stream.metadata)
    if tagged:
        return max(1, tagged - discarded), True, discarded
    if scan is not None and scan.packets:
        return max(1, scan.packets - discarded), False, discarded
    return (round(duration * rate) if duration else None), False, 0


# Probing counts the video packets of files up to this size (a demux only: about a
# second for this much Matroska on a laptop); of larger files it reads the last
# TAIL_SECONDS of the timeline only, for where the video stream ends.
COUNT_PACKETS_BYTES = 256 * 2**20
TAIL_SECONDS = 10.0

# A file is whole where its packets reach its header's end, less this share of the
# duration (and at least two frames): audio and video need not end on the same tick.
WHOLE_MARGIN = 0.02


def scan_file(
    path: Path, index: int, step: float, start: float, duration: float | None
) -> PacketScan | None:
    """Demux ``path`` without decoding (:mod:`vidsr.media.packet_scan`): all of it up to
    :data:`COUNT_PACKETS_BYTES`, else from :data:`TAIL_SECONDS` before the header's end
    (``start + duration``; nothing without a duration)."""
    if path.stat().st_size <= COUNT_PACKETS_BYTES:
        return scan_packets(path, index, step)
    if duration is None:
        return None
    return scan_tail(path, index, step, start + duration - TAIL_SECONDS)


def video_duration(
    start: float, declared: float | None, scan: PacketScan | None, rate: Fraction
) -> float | None:
    """The video stream's own duration: from ``start`` to the end of its last packet,
    where the file is whole (its packets reach the ``declared`` end, the header's:
    often the longest stream's, the audio's); else, in a truncated file or without a
    scan, ``declared``, so that what was cut off counts as lost."""
    if scan is None or scan.video_end is None or scan.video_end <= start:
        return declared
    if declared is not None:
        margin = max(WHOLE_MARGIN * declared, float(2 / rate))
        if scan.file_end is None or scan.file_end < start + declared - margin:
            return declared
    return scan.video_end - start


def _tag_frame_count(metadata: dict[str, str]) -> int | None:
    for key, value in metadata.items():
        if key.upper().startswith("NUMBER_OF_FRAMES"):
            try:
                return int(value)
            except ValueError:
                return None
    return None


# FFmpeg's AVFieldOrder values (PyAV gives the codec parameters' field_order as a number).
_FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


def field_order(stream, frame: av.VideoFrame) -> str:
    """FFmpeg's field order name of the stream (``progressive``, ``tt``, ``bb``, ``tb``,
    ``bt``), from its codec parameters; where they leave it unsaid, or say progressive
    while the first frame is interlaced, the first frame's own (its decoder's flags, see
    :func:`~vidsr.media.fields.frame_field_order`). ``frame`` is used up."""
    name = _FIELD_ORDERS.get(int(getattr(stream.codec_context, "field_order", 0) or 0))
    if name is not None and (name != "progressive" or not frame.interlaced_frame):
        return name
    return frame_field_order(frame)


def _short(e: BaseException) -> str:
    """One line from an FFmpeg error: its message without the errno and path noise."""
    text = getattr(e, "strerror", None) or str(e)
    return text.splitlines()[0] if text else type(e).__name__


def synthetic_video_info(
    *,
    path: Path,
    container_format: str,
    width: int,
    height: int,
    source_format: str,
    work_format: str,
    yuv: YuvFormat,
    frame_rate: Fraction,
    time_base: Fraction,
    color_primaries: int = 2,
    color_trc: int = 2,
) -> VideoInfo:
    """A :class:`VideoInfo` for a source that is not a probed file (frame folders, live
    streams): no other streams, no rotation, unknown length, colour tags from ``yuv``."""
    return VideoInfo(
        path=path,
        container_format=container_format,
        width=width,
        height=height,
        source_format=source_format,
        work_format=work_format,
        yuv=yuv,
        matrix_guessed=False,
        time_base=time_base,
        frame_rate=frame_rate,
        frame_count=None,
        frame_count_exact=False,
        duration_seconds=None,
        rotation=0,
        color_primaries=color_primaries,
        color_trc=color_trc,
        colorspace=yuv.matrix,
        color_range=AVCOL_RANGE_JPEG if yuv.full_range else 1,
        stream_index=0,
    )
