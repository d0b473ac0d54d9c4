"""Encode upscaled frames and copy the other streams into the output container.

:func:`plan_output` checks every encoding choice before any work starts (container from
the extension, codec, pixel format, stream copy compatibility, frame size).
:class:`FileSink` then writes: it is used from the encode thread only.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidsr.colour.convert import MATRIX_COEFFICIENTS
from vidsr.config import DEFAULT_CODEC, EncodeConfig
from vidsr.errors import EncodeError, OptionError
from vidsr.media.adts import ADTS_CONTAINERS, AdtsToRaw, is_adts
from vidsr.media.audio import AUDIO_CODEC_NAMES, AudioTranscoder
from vidsr.media.container_items import plan_items, write_items
from vidsr.media.deinterlace import FIELD_ORDER_CODES
from vidsr.media.encoder_check import check_encoder_opens, stream_advice
from vidsr.media.planes import HostFrame, Planes, array_to_plane, chroma_shift
from vidsr.media.probe import VideoInfo, work_format_for
from vidsr.media.resume import ResumePoint, copy_packets, first_frame_time
from vidsr.media.side_data import hdr_encoder_options
from vidsr.media.timestamps import FrameGrid, PacketStamps

log = logging.getLogger(__name__)

CONTAINERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mkv": "matroska",
    ".mov": "mov",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".nut": "nut",
}
# Metadata keys written by muxers themselves; copying them would be stale or wrong.
# creation_time is the input's own and is kept, as ffmpeg keeps it.
_GENERATED_KEYS = {
    "encoder",
    "major_brand",
    "minor_version",
    "compatible_brands",
    "duration",
    "handler_name",
    "vendor_id",
}
_PLANAR_YUV_PREFIXES = ("yuv420p", "yuv422p", "yuv444p")
# What FFmpeg's MPEG-TS muxer writes stream types for (libavformat/mpegtsenc.c).
_MPEGTS_CODECS = {
    "mpeg1video",
    "mpeg2video",
    "mpeg4",
    "h264",
    "hevc",
    "vvc",
    "cavs",
    "dirac",
    "vc1",
    "mp2",
    "mp3",
    "aac",
    "aac_latm",
    "ac3",
    "eac3",
    "dts",
    "truehd",
    "opus",
    "s302m",
    "dvb_subtitle",
    "dvb_teletext",
    "arib_caption",
    "smpte_klv",
    "timed_id3",
}
# Codecs whose bitstream has no sample aspect ratio (Matroska would need the muxer's
# display size, which PyAV does not set).
_NO_SAR_CODECS = {"vp8", "vp9", "av1"}
_FRAME_GRID_CODECS = {"mpeg1video", "mpeg2video"}
# Default encoders of containers that cannot hold H.264, best first.
_CONTAINER_DEFAULT_CODECS = {"webm": ("libvpx-vp9", "libsvtav1", "libaom-av1")}
# MP4 and MOV write their index (moov) at the end: a hard-killed run would leave nothing
# readable. They are written fragmented while running (a fragment per GOP, each complete
# on disk once the next keyframe arrives, so --resume finds them), then remuxed into a
# regular, faststart file at publish (remux_fragmented).
FRAGMENTED_CONTAINERS = frozenset({"mp4", "mov"})
_FRAGMENTED_MOVFLAGS = "frag_keyframe+delay_moov+default_base_moof"
# Containers that store a frame index, not timestamps: the video stream's time base is
# its frame rate (one tick per frame, as ffmpeg writes them), frames are stamped on that
# grid (FrameGrid). With the input's finer time base AVI would declare 1000 fps for
# 1 ms ticks and pad every gap between frames with empty chunks.
FRAME_INDEX_CONTAINERS = frozenset({"avi"})


@dataclass(frozen=True)
class OutputPlan:
    """Decided encoding settings for one output file.

    ``codec_time_base`` is the encoder's time base (the input's, or one frame for codecs
    that only take a standard frame rate); ``codec_tag`` a fourcc to write, or ``None``;
    ``chapters`` whether the input's chapters are copied; ``attachments`` the input stream
    indexes of the attachments to copy; ``frame_grid`` that the video stream's time base
    is one frame (``1 / frame_rate``) and frames are stamped on that grid (AVI)."""

    path: Path
    container_format: str
    codec: str
    pix_fmt: str
    work_format: str  # planar YUV format the pipeline hands over before any final reformat
    bits: int
    width: int
    height: int
    options: dict[str, str]
    passthrough: tuple[int, ...]
    threads: int
    codec_time_base: Fraction | None = None
    frame_rate: Fraction | None = None
    codec_tag: str | None = None
    chapters: bool = False
    attachments: tuple[int, ...] = ()
    audio: str = "copy"  # EncodeConfig.audio: passthrough audio is copied or re-encoded
    frame_grid: bool = False


def _bits(pix_fmt: str) -> int:
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def _default_pix_fmt(codec: av.codec.Codec, in_bits: int, in_format: str = "yuv420p") -> str:
    """Keep the input's bit depth: 8-bit in gives yuv420p, deeper gives a 10-bit format;
    4:2:2 input stays 4:2:2 where the codec takes it (4:4:4 and RGB input become 4:2:0)."""
    formats = [f.name for f in codec.video_formats or []]
    chroma = "yuv422p" if in_format.startswith("yuv422") else "yuv420p"
    wanted = chroma if in_bits <= 8 else f"{chroma}10le"
    if chroma == "yuv422p" and formats and wanted not in formats:
        chroma, wanted = "yuv420p", "yuv420p" if in_bits <= 8 else "yuv420p10le"
    if not formats or wanted in formats:
        return wanted
    depth = 8 if in_bits <= 8 else 10
    same_depth = [f for f in formats if f.startswith(_PLANAR_YUV_PREFIXES) and _bits(f) == depth]
    if same_depth:
        return same_depth[0]
    return formats[0]


def container_codecs(container_format: str) -> set[str]:
    """Codec names a container can hold: FFmpeg's answer, which is incomplete for MPEG-TS
    (its muxer has no codec table; this is the list it writes stream types for)."""
    supported = set(av.open(io.BytesIO(), "w", format=container_format).supported_codecs)
    if container_format == "mpegts":
        supported |= _MPEGTS_CODECS
    return supported


def plan_output(info: VideoInfo, out_path: Path, encode: EncodeConfig, scale: int) -> OutputPlan:
    """Check and settle the output's encoding before any frame is processed.

    Raises:
        OptionError: unknown extension or codec, a pixel format the codec cannot take,
            a codec the container cannot hold, an odd size for subsampled chroma, or an
            audio/subtitle stream that the chosen container cannot carry.
    """
    ext = out_path.suffix.lower()
    container_format = CONTAINERS.get(ext)
    if container_format is None:
        known = ", ".join(sorted(CONTAINERS))
        raise OptionError(f"unsupported output extension {ext or '(none)'!r}; use one of {known}")
    supported = container_codecs(container_format)
    codec_name = encode.codec or _default_codec(container_format)
    codec = _video_encoder(codec_name, supported, ext)
    pix_fmt = _pixel_format(codec, encode, info)
    bits = _bits(pix_fmt)
    work = work_format_for(pix_fmt, bits)
    if work.startswith("yuv444p") and bits > 8 and not work.endswith(("10le", "12le")):
        work = "yuv444p16le"
    width, height = info.width * scale, info.height * scale
    _check_even_size(pix_fmt, width, height)
    passthrough = _passthrough(info, supported, ext, encode.audio)
    chapters, attachments = plan_items(info, container_format, ext)
    options, rate, codec_tb = _encoder_options(codec, encode, info)
    frame_grid = container_format in FRAME_INDEX_CONTAINERS
    if frame_grid:
        codec_tb = 1 / rate
    hdr_encoder_options(codec.name, info.hdr, options)
    if codec.name == "libx265" and not log.isEnabledFor(logging.INFO):  # quiet unless -v
        _add_x265_param(options, "log-level=error")
    check_encoder_opens(codec.name, pix_fmt, options, codec_tb, encode.preset)
    sar = info.sample_aspect_ratio
    if sar and sar != 1 and codec.canonical_name in _NO_SAR_CODECS:
        log.warning(
            "the input's pixel aspect %s is not kept: %s output has no field for it "
            "(it displays with square pixels)",
            info.sample_aspect_ratio,
            codec.name,
        )
    tag = "hvc1" if codec.canonical_name == "hevc" and container_format in ("mp4", "mov") else None
    return OutputPlan(
        out_path,
        container_format,
        codec_name,
        pix_fmt,
        work,
        bits,
        width,
        height,
        options,
        passthrough,
        encode.threads,
        codec_tb,
        rate,
        tag,
        chapters,
        attachments,
        encode.audio,
        frame_grid,
    )


def _default_codec(container_format: str) -> str:
    """The encoder used without ``--codec``: libx264, or for WebM the first VP9/AV1
    encoder this FFmpeg build has."""
    for name in _CONTAINER_DEFAULT_CODECS.get(container_format, ()):
        if name in av.codecs_available:
            return name
    return DEFAULT_CODEC


def container_default_codec(out_path: Path) -> str | None:
    """The encoder an ``out_path`` output needs without ``--codec`` when it is not the
    general default (libx264, or NVENC with ``--hwaccel``): VP9 for ``.webm``; else None."""
    container_format = CONTAINERS.get(out_path.suffix.lower(), "")
    if container_format not in _CONTAINER_DEFAULT_CODECS:
        return None
    return _default_codec(container_format)


def _add_x265_param(options: dict[str, str], param: str) -> None:
    """Append ``param`` to the ``x265-params`` option (``:``-separated)."""
    current = options.get("x265-params")
    options["x265-params"] = f"{current}:{param}" if current else param


def _video_encoder(codec_name: str, supported: set[str], ext: str) -> av.codec.Codec:
    try:
        codec = av.codec.Codec(codec_name, "w")
    except (av.error.FFmpegError, ValueError) as e:  # PyAV raises UnknownCodecError(ValueError)
        raise OptionError(
            f"unknown encoder {codec_name!r} (try libx264, libx265, libvpx-vp9, "
            f"libsvtav1, ffv1, prores_ks)"
        ) from e
    if codec.type != "video":
        raise OptionError(f"{codec_name!r} is not a video encoder")
    if codec.canonical_name not in supported and codec.name not in supported:
        fits = _default_codec(CONTAINERS[ext])
        raise OptionError(
            f"codec {codec_name} cannot go in a {ext} file; use --codec {fits} "
            f"(the default for {ext}) or another extension"
        )
    return codec


def _pixel_format(codec: av.codec.Codec, encode: EncodeConfig, info: VideoInfo) -> str:
    if encode.pix_fmt is None:
        return _default_pix_fmt(codec, info.yuv.bits, info.work_format)
    formats = [f.name for f in codec.video_formats or []]
    if formats and encode.pix_fmt not in formats:
        raise OptionError(
            f"codec {codec.name} does not take --pix-fmt {encode.pix_fmt} "
            f"(takes {', '.join(formats)})"
        )
    try:
        av.VideoFormat(encode.pix_fmt)
    except (ValueError, av.error.FFmpegError) as e:
        raise OptionError(f"unknown pixel format {encode.pix_fmt!r}") from e
    return encode.pix_fmt


def _check_even_size(pix_fmt: str, width: int, height: int) -> None:
    shift_v, shift_h = chroma_shift(pix_fmt)
    if (shift_h and width % 2) or (shift_v and height % 2):
        raise OptionError(
            f"output size {width}x{height} is odd, which {pix_fmt} cannot hold; "
            f"use --pix-fmt yuv444p or an even --scale"
        )


def _passthrough(
    info: VideoInfo, supported: set[str], ext: str, audio: str = "copy"
) -> tuple[int, ...]:
    """Input streams to carry: subtitles and audio (copied, or re-encoded when ``audio``
    names an encoder; none with ``audio="none"``)."""
    passthrough = []
    for stream in info.other_streams:
        if stream.kind == "attachment" or (stream.kind == "audio" and audio == "none"):
            continue  # attachments: see plan_items
        if stream.kind not in ("audio", "subtitle"):
            log.warning(
                "stream #%d (%s %s) is not copied: only audio and subtitles are",
                stream.index,
                stream.kind,
                stream.codec,
            )
            continue
        target = AUDIO_CODEC_NAMES.get(audio) if stream.kind == "audio" else None
        if (target or stream.codec) not in supported:
            raise OptionError(
                stream_advice(stream.kind, stream.index, stream.codec, ext, supported, target)
            )
        passthrough.append(stream.index)
    return tuple(passthrough)


def _encoder_options(
    codec: av.codec.Codec, encode: EncodeConfig, info: VideoInfo
) -> tuple[dict[str, str], Fraction, Fraction]:
    """Encoder options, frame rate and time base. MPEG-1/2 take only standard frame rates
    and a time base of one frame (else ``avcodec_open2`` fails with EINVAL), and without
    a rate control choice they encode at 200 kbit/s: they get a fixed quantiser (3, or
    ``--crf`` read as the quantiser, 1-31)."""
    options: dict[str, str] = {}
    name = codec.name
    if encode.crf is not None and name.endswith("_nvenc"):  # NVENC's constant quality
        options.update(rc="vbr", cq=str(encode.crf))
    elif encode.crf is not None and codec.canonical_name not in _FRAME_GRID_CODECS:
        options["crf"] = str(encode.crf)
    if encode.preset is not None:
        options["preset"] = encode.preset
    options["g"] = str(encode.gop or max(1, round(2 * info.frame_rate)))
    rate, time_base = info.frame_rate, info.time_base
    if codec.canonical_name in _FRAME_GRID_CODECS:
        rates = [Fraction(r) for r in codec.frame_rates or []]
        if rates and rate not in rates:
            nearest = min(rates, key=lambda r: abs(r - rate))
            log.warning(
                "%s takes only standard frame rates: %s fps is written as %s fps",
                name,
                rate,
                nearest,
            )
            rate = nearest
        time_base = 1 / rate
        quant = 3 if encode.crf is None else max(1, min(31, encode.crf))  # --crf: quantiser
        options.update(flags="+qscale", qmin=str(quant), qmax=str(quant))
    return options, rate, time_base


class FileSink:
    """Writes one output file: the upscaled video plus copied audio/subtitle streams.

    Call :meth:`open`, then :meth:`write_frame` / :meth:`mux_packet` in any interleaving,
    then :meth:`close` (which flushes the encoder, so even a stopped run leaves a
    playable file).
    """

    def __init__(
        self,
        plan: OutputPlan,
        info: VideoInfo,
        write_path: Path,
        resume_from: ResumePoint | None = None,
    ) -> None:
        self.plan = plan
        self.info = info
        self.write_path = write_path
        self.resume_from = resume_from
        self.frames_written = 0
        self._last_dts: int | None = None  # of the video stream, in its time base
        self._container: av.container.OutputContainer | None = None
        self._video: av.video.stream.VideoStream | None = None
        self._stream_map: dict[int, av.stream.Stream] = {}
        self._source: av.container.InputContainer | None = None
        self.stamps = PacketStamps(plan.container_format)  # repairs copied packets' dts
        self._transcoders: dict[int, AudioTranscoder] = {}
        self._adts: dict[int, AdtsToRaw] = {}  # ADTS AAC copied into AVI
        rate = plan.frame_rate or info.frame_rate
        origin = round(Fraction(info.start_seconds) / info.time_base)
        self.grid = FrameGrid(info.time_base, rate, origin) if plan.frame_grid else None

    def open(self) -> None:
        """Create the output file and its streams.

        Raises:
            EncodeError: the file cannot be created or the encoder refuses the settings.
        """
        plan, info = self.plan, self.info
        fragmented = plan.container_format in FRAGMENTED_CONTAINERS
        options = {"movflags": _FRAGMENTED_MOVFLAGS} if fragmented else None
        try:
            self._container = av.open(
                str(self.write_path), "w", format=plan.container_format, options=options
            )
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot create {plan.path}: {e}") from e
        out = self._container
        out.metadata.update(
            {k: v for k, v in info.metadata.items() if k.lower() not in _GENERATED_KEYS}
        )
        self._video = self._add_video(out)
        if plan.passthrough or plan.attachments:
            # Templates must come from an open input container; it is only read for stream
            # parameters (and attachments).
            self._source = av.open(str(info.path), metadata_errors="replace")
            for index in plan.passthrough:
                template = self._source.streams[index]
                if template.type == "audio" and plan.audio not in ("copy", "none"):
                    self._transcoders[index] = AudioTranscoder(out, template, plan.audio)
                    self._stream_map[index] = self._transcoders[index].stream
                    continue
                copied = out.add_stream_from_template(template)
                if plan.container_format in ADTS_CONTAINERS and is_adts(template):
                    self._adts[index] = self._adts_filter(template)
                    copied.codec_context.extradata = self._adts[index].extradata
                copied.metadata.update(
                    {k: v for k, v in template.metadata.items() if k.upper() != "DURATION"}
                )
                copied.disposition = template.disposition
                self._stream_map[index] = copied
        write_items(out, info, plan.chapters, plan.attachments, self._source)
        video = self._video
        if self.resume_from is not None:
            try:
                start = first_frame_time(info.path, info.stream_index)
                self._last_dts = copy_packets(self.resume_from, video, out, start)
            except (av.error.FFmpegError, OSError) as e:
                raise EncodeError(
                    f"cannot copy the finished part of {self.resume_from.path}: {e}"
                ) from e
            self.frames_written = self.resume_from.frames_done

    def _adts_filter(self, template: av.stream.Stream) -> AdtsToRaw:
        try:
            return AdtsToRaw(self.info.path, template)
        except (ValueError, av.error.FFmpegError, OSError) as e:
            raise EncodeError(
                f"cannot copy the AAC audio of stream #{template.index} into {self.plan.path}: "
                f"{e}; use --audio aac to re-encode it"
            ) from e

    def _add_video(self, out: av.container.OutputContainer) -> av.video.stream.VideoStream:
        """The video stream, with the input's tags, pixel aspect, disposition and metadata."""
        plan, info = self.plan, self.info
        video = out.add_stream(
            plan.codec, rate=plan.frame_rate or info.frame_rate, options=dict(plan.options)
        )
        video.width, video.height, video.pix_fmt = plan.width, plan.height, plan.pix_fmt
        video.time_base = self.grid.time_base if self.grid is not None else info.time_base
        cc = video.codec_context
        cc.time_base = plan.codec_time_base or info.time_base
        cc.thread_type = "AUTO"
        cc.thread_count = plan.threads
        # Colour tags: carry the input's; where it left the matrix unsaid, write the one used.
        known = info.colorspace in MATRIX_COEFFICIENTS
        cc.colorspace = info.colorspace if known else info.yuv.matrix
        cc.color_range = info.color_range
        cc.color_primaries = info.color_primaries
        cc.color_trc = info.color_trc
        if info.interlaced:  # woven fields upscaled as they are: keep the tag truthful
            cc.field_order = FIELD_ORDER_CODES[info.field_order]
        if info.sample_aspect_ratio:  # an integer scale keeps the pixel shape
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        self._tag_video(video)
        return video

    def _tag_video(self, video: av.video.stream.VideoStream) -> None:
        """Stream-level tags of the output's video: codec tag, rotation, disposition and
        the input's metadata (less what the muxer writes itself)."""
        plan, info = self.plan, self.info
        if plan.codec_tag:
            video.codec_tag = plan.codec_tag
        if info.rotation:
            video.set_display_rotation(info.rotation)
        if info.video_disposition:
            video.disposition = av.stream.Disposition(info.video_disposition)
        video.metadata.update(
            {k: v for k, v in info.video_metadata.items() if k.lower() not in _GENERATED_KEYS}
        )

    def write_frame(self, planes: Planes, source: HostFrame) -> None:
        """Encode one frame given as work-format planes (uint8, or uint16 for deeper
        formats), with the timestamp and duration of its ``source`` frame."""
        assert self._container is not None and self._video is not None, "open() first"
        plan = self.plan
        frame = av.VideoFrame(plan.width, plan.height, plan.work_format)
        dtype = np.uint8 if plan.bits == 8 else np.dtype("<u2")
        for plane, data in zip(frame.planes, planes):
            array_to_plane(data, plane, dtype)
        if self.grid is not None:  # one slot per frame
            frame.pts, frame.time_base = self.grid.stamp(source.pts), self.grid.time_base
        else:
            frame.pts, frame.time_base = source.pts, self.info.time_base
            if source.duration:
                frame.duration = source.duration
        cc = self._video.codec_context
        frame.colorspace = cc.colorspace
        frame.color_range = cc.color_range
        if plan.work_format != plan.pix_fmt:
            frame = frame.reformat(format=plan.pix_fmt)
        try:
            for packet in self._video.encode(frame):
                self._mux_video(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot write {plan.path}: {e}") from e
        self.frames_written += 1

    def _mux_video(self, packet: av.Packet) -> None:
        """Mux an encoded packet. After resumed, copied packets, a fresh encoder's first
        decode timestamps can fall at or before the last copied one (B-frame delay);
        they are nudged forward, which keeps dts increasing and still at or before pts."""
        assert self._container is not None and self._video is not None
        tb = self._video.time_base
        if self._last_dts is not None and packet.dts is not None and packet.time_base is not None:
            dts = int(packet.dts * packet.time_base / tb)
            if dts <= self._last_dts:
                pts = packet.pts * packet.time_base / tb if packet.pts is not None else None
                packet.time_base = tb
                packet.dts = self._last_dts + 1
                if pts is not None:
                    packet.pts = max(round(pts), packet.dts)
        self._container.mux(packet)
        if packet.dts is not None:
            self._last_dts = packet.dts  # rebased to the stream's time base by mux()

    def mux_packet(self, stream_index: int, packet: av.Packet) -> None:
        """Copy a packet of input stream ``stream_index`` without re-encoding it."""
        assert self._container is not None, "open() first"
        stream = self._stream_map.get(stream_index)
        if stream is None:
            return
        transcoder = self._transcoders.get(stream_index)
        adts = self._adts.get(stream_index)
        if transcoder is None:
            self.stamps.fix(stream_index, packet)
        packets = transcoder.encode(packet) if transcoder is not None else None
        try:
            if packets is None:
                packets = adts.filter(packet) if adts is not None else [packet]
            for out_packet in packets:
                out_packet.stream = stream
                self._container.mux(out_packet)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot write {self.plan.path}: {e}") from e

    def close(self) -> None:
        """Flush the encoder and write the container trailer. Safe to call twice."""
        container = self._container
        try:
            if container is not None:
                if self._video is not None:
                    for packet in self._video.encode():
                        self._mux_video(packet)
                for transcoder in self._transcoders.values():
                    container.mux(transcoder.flush())
                container.close()
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot finish {self.plan.path}: {e}") from e
        finally:
            self._container = None
            if self._source is not None:
                self._source.close()
                self._source = None


def is_fragmented(path: Path) -> bool:
    """Whether ``path`` is a fragmented MP4/MOV (as :class:`FileSink` writes them while
    running), which needs :func:`remux_fragmented` before it is published: a ``moof``
    box among its first top-level boxes."""
    if CONTAINERS.get(path.suffix.lower()) not in FRAGMENTED_CONTAINERS:
        return False
    with path.open("rb") as f:
        for _ in range(8):
            header = f.read(8)
            if len(header) < 8:
                return False
            size, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"moof":
                return True
            if size == 1:  # a 64-bit size follows
                size = int.from_bytes(f.read(8), "big") - 8
            if size < 8:
                return False
            f.seek(size - 8, io.SEEK_CUR)
    return False


def remux_fragmented(src: Path, dst: Path) -> None:
    """Copy the fragmented MP4/MOV ``src`` into a regular one at ``dst`` (index first,
    "faststart"), packet for packet: every video, audio and subtitle stream, its tags,
    side data (rotation, HDR), disposition and time base, the file's metadata and its
    chapters.

    Raises:
        EncodeError: ``src`` cannot be read or ``dst`` written (e.g. the disk is full).
    """
    container_format = CONTAINERS[dst.suffix.lower()]
    try:
        with (
            av.open(str(src), metadata_errors="replace") as source,
            av.open(
                str(dst), "w", format=container_format, options={"movflags": "+faststart"}
            ) as out,
        ):
            out.metadata.update(
                {k: v for k, v in source.metadata.items() if k.lower() not in _GENERATED_KEYS}
            )
            streams = {}
            # Data streams are the muxer's own (the chapter track, a timecode track): it
            # writes them again from the chapters and the metadata.
            for stream in (s for s in source.streams if s.type != "data"):
                copied = out.add_stream_from_template(stream)
                copied.time_base = stream.time_base
                if stream.type == "video" and stream.codec_tag:
                    copied.codec_tag = stream.codec_tag  # e.g. hvc1, which it would not pick
                copied.metadata.update(
                    {k: v for k, v in stream.metadata.items() if k.lower() not in _GENERATED_KEYS}
                )
                copied.disposition = stream.disposition
                streams[stream.index] = copied
            chapters = source.chapters()
            if chapters:
                out.set_chapters(chapters)
            for packet in source.demux([source.streams[i] for i in streams]):
                if packet.dts is None and packet.size == 0:
                    continue  # a demuxer's end-of-stream marker
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    except (av.error.FFmpegError, OSError) as e:
        raise EncodeError(f"cannot finish {dst}: {e}") from e
