"""Everything the input file carries reaches the output (issue 18): pixel aspect, HDR10
metadata, chapters, attachments, MPEG-TS output, the hvc1 tag, creation time, the default
disposition and 4:2:2 chroma. Each test builds a tiny input with PyAV, upscales it with
the bicubic baseline and reads the output back with PyAV, as a user's player would."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.sidedata.sidedata import Type
from conftest import frame_times, make_video, packet_payloads, pattern_frame, read_frames

from vidsr import EncodeConfig, RunConfig
from vidsr.media.side_data import HdrMetadata, hdr_encoder_options
from vidsr.pipeline.video import upscale_video

MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
MS = Fraction(1, 1000)
CHAPTERS = [
    {"id": 1, "start": 0, "end": 200, "time_base": MS, "metadata": {"title": "Intro"}},
    {"id": 2, "start": 200, "end": 400, "time_base": MS, "metadata": {"title": "Main"}},
]
FONT = b"\x00\x01\x00\x00" + bytes(range(256))  # stands in for a TrueType file


def needs(codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec}")


def write_clip(
    path: Path,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    n: int = 10,
    setup: Callable[[av.container.OutputContainer, av.video.stream.VideoStream], None]
    | None = None,
) -> Path:
    """A 64x48, 25 fps clip; ``setup`` adjusts the container and stream before encoding."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=25, options={"preset": "ultrafast", **(options or {})})
        video.width, video.height, video.pix_fmt = 64, 48, pix_fmt
        if setup is not None:
            setup(out, video)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, 64, 48), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return path


def upscale(src: Path, dst: Path, codec: str | None = None) -> Path:
    upscale_video(
        src,
        dst,
        RunConfig(model="bicubic", colour="off", device="cpu", encode=EncodeConfig(codec=codec)),
    )
    return dst


def side_data(path: Path) -> dict[Type, bytes]:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return {item.type: bytes(item) for item in frame.side_data}


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_sample_aspect_ratio_kept(tmp_path: Path, ext: str) -> None:
    def anamorphic(_out, video) -> None:
        video.codec_context.sample_aspect_ratio = Fraction(32, 27)

    src = write_clip(tmp_path / f"dvd{ext}", setup=anamorphic)
    dst = upscale(src, tmp_path / f"dvd_x2{ext}")
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        sa, sb = a.streams.video[0], b.streams.video[0]
        assert sb.codec_context.sample_aspect_ratio == Fraction(32, 27)
        assert (sb.codec_context.width, sb.codec_context.height) == (128, 96)
        assert sb.codec_context.display_aspect_ratio == sa.codec_context.display_aspect_ratio


@pytest.mark.parametrize(("codec", "ext"), [("libx265", ".mkv"), ("libx264", ".mp4")])
def test_hdr10_static_metadata_carried(tmp_path: Path, codec: str, ext: str) -> None:
    needs("libx265")
    needs(codec)

    def hdr_tags(_out, video) -> None:
        cc = video.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace = 9, 16, 9  # BT.2020, PQ

    params = f"master-display={MASTER}:max-cll=1000,400:log-level=error"
    src = write_clip(
        tmp_path / "hdr.mkv",
        codec="libx265",
        pix_fmt="yuv420p10le",
        options={"x265-params": params},
        setup=hdr_tags,
    )
    before = side_data(src)
    assert Type.MASTERING_DISPLAY_METADATA in before and Type.CONTENT_LIGHT_LEVEL in before
    dst = upscale(src, tmp_path / f"hdr_x2{ext}", codec=codec)
    after = side_data(dst)
    assert after.get(Type.MASTERING_DISPLAY_METADATA) == before[Type.MASTERING_DISPLAY_METADATA]
    assert after.get(Type.CONTENT_LIGHT_LEVEL) == before[Type.CONTENT_LIGHT_LEVEL]
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.color_primaries, cc.color_trc, cc.colorspace) == (9, 16, 9)
        assert cc.format.name == "yuv420p10le"


def test_dynamic_hdr_metadata_is_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    options: dict[str, str] = {}
    with caplog.at_level(logging.WARNING):
        hdr_encoder_options("libx265", HdrMetadata(dynamic=("Dolby Vision",)), options)
    assert "Dolby Vision dynamic HDR metadata is not carried" in caplog.text
    assert options == {}


def _chapters_and_font(out, _video) -> None:
    out.set_chapters(CHAPTERS)
    out.add_attachment("Subtitle Font.ttf", "font/ttf", FONT)


def test_chapters_and_attachments_copied_to_mkv(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "anime.mkv", setup=_chapters_and_font)
    dst = upscale(src, tmp_path / "anime_x2.mkv")
    with av.open(str(dst)) as c:
        chapters = c.chapters()
        assert [ch["metadata"]["title"] for ch in chapters] == ["Intro", "Main"]
        spans = [(ch["start"] * ch["time_base"], ch["end"] * ch["time_base"]) for ch in chapters]
        assert spans == [(0, Fraction(1, 5)), (Fraction(1, 5), Fraction(2, 5))]
        (font,) = c.streams.attachments
        assert font.data == FONT and font.mimetype == "font/ttf"
        assert font.metadata["filename"] == "Subtitle Font.ttf"


def test_mp4_keeps_chapters_and_names_the_attachment_it_drops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = write_clip(tmp_path / "anime.mkv", setup=_chapters_and_font)
    with caplog.at_level(logging.WARNING):
        dst = upscale(src, tmp_path / "anime_x2.mp4")
    assert "Subtitle Font.ttf" in caplog.text and "cannot hold attachments" in caplog.text
    with av.open(str(dst)) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Main"]


@pytest.mark.parametrize("codec", ["libx264", "libx265", "mpeg2video"])
def test_mpegts_output(tmp_path: Path, codec: str) -> None:
    needs(codec)
    src = make_video(tmp_path / "in.mp4", n=10, audio=True)
    dst = upscale(src, tmp_path / "out.ts", codec=codec)
    frames = read_frames(dst)
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (128, 96)
    with av.open(str(dst)) as c:
        assert c.format.name == "mpegts"
        assert c.streams.video[0].codec_context.name == av.codec.Codec(codec, "w").canonical_name
        assert c.streams.audio[0].codec_context.name == "aac"


def test_hevc_in_mp4_is_tagged_hvc1(tmp_path: Path) -> None:
    needs("libx265")
    src = make_video(tmp_path / "in.mp4", n=6)
    dst = upscale(src, tmp_path / "out.mp4", codec="libx265")
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_tag == "hvc1"


def test_creation_time_and_default_disposition_kept(tmp_path: Path) -> None:
    stamp = "2024-05-01T12:34:56.000000Z"

    def dated(out, video) -> None:
        out.metadata["creation_time"] = stamp
        video.metadata["creation_time"] = stamp
        video.disposition = av.stream.Disposition.default

    src = write_clip(tmp_path / "cam.mov", setup=dated)
    dst = upscale(src, tmp_path / "cam_x2.mov")
    with av.open(str(dst)) as c:
        assert c.metadata.get("creation_time") == stamp
        video = c.streams.video[0]
        assert video.metadata.get("creation_time") == stamp
        assert video.disposition & av.stream.Disposition.default


@pytest.mark.parametrize(
    ("codec", "pix_fmt"), [("libx264", "yuv422p"), ("prores_ks", "yuv422p10le")]
)
def test_422_input_stays_422(tmp_path: Path, codec: str, pix_fmt: str) -> None:
    needs(codec)
    src = write_clip(tmp_path / "studio.mkv", codec=codec, pix_fmt=pix_fmt)
    dst = upscale(src, tmp_path / "studio_x2.mkv", codec=codec)
    frames = read_frames(dst)
    assert len(frames) == 10 and frames[0].format.name == pix_fmt


def _video_times(path: Path) -> list[Fraction]:
    """Frame times in presentation order, from the first frame's."""
    times = sorted(frame_times(path))
    return [t - times[0] for t in times]


def test_avi_is_written_one_tick_per_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = make_video(tmp_path / "in.mkv", n=100, size=(160, 120), audio=True)
    with caplog.at_level(logging.WARNING):
        avi = upscale(src, tmp_path / "out.avi")
    assert "variable frame timing" not in caplog.text
    mkv = upscale(src, tmp_path / "out.mkv")
    # Before: a 1 ms time base declared 1000 fps and padded 39 empty chunks per frame.
    assert avi.stat().st_size < 1.3 * mkv.stat().st_size
    with av.open(str(avi)) as c:
        video = c.streams.video[0]
        assert video.time_base == Fraction(1, 25) and video.average_rate == 25
        assert video.frames == 100 and video.duration * video.time_base == 4
        starts = {p.stream.type: p.dts for p in c.demux() if p.size > 0 and p.dts == 0}
    assert len(read_frames(avi)) == 100
    assert _video_times(avi) == _video_times(src)
    # In sync: AVI has no timestamps for the audio; it starts with the video, all of it.
    assert starts == {"video": 0, "audio": 0}
    assert packet_payloads(avi, "audio") == packet_payloads(src, "audio")


def test_variable_rate_avi_is_warned_and_kept_in_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    times = [0]
    for i in range(1, 60):
        times.append(times[-1] + (70 if i % 3 == 0 else 40))
    src = make_video(tmp_path / "vfr.mkv", n=60, pts_ms=times, audio=True)
    with caplog.at_level(logging.WARNING):
        dst = upscale(src, tmp_path / "vfr.avi")
    assert "AVI cannot keep variable frame timing" in caplog.text
    with av.open(str(dst)) as c:
        assert c.streams.video[0].time_base == Fraction(1, 25)
    out, inp = _video_times(dst), _video_times(src)
    assert len(out) == 60 and len(set(out)) == 60
    # Each frame in the slot nearest its time, or the next free one: never far from it.
    assert max(abs(a - b) for a, b in zip(out, inp)) <= Fraction(3, 25)
    assert abs(out[-1] - inp[-1]) <= Fraction(1, 25)


def test_transport_stream_audio_copies_into_avi(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MPEG-TS AAC is ADTS framed, which the AVI muxer refused (the run ended in "Invalid
    argument"); its video starts 21 ms in, between two slots of the grid."""
    src = make_video(tmp_path / "in.ts", n=50, audio=True)
    with caplog.at_level(logging.WARNING):
        dst = upscale(src, tmp_path / "out.avi")
    assert "variable frame timing" not in caplog.text
    assert len(read_frames(dst)) == 50
    with av.open(str(dst)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.extradata == bytes([0x11, 0x90])  # AAC LC, 48 kHz, stereo
        assert sum(1 for _ in c.decode(audio)) > 90  # it decodes
    # The same AAC frames, without their 7-byte ADTS headers.
    assert packet_payloads(dst, "audio") == [p[7:] for p in packet_payloads(src, "audio")]
