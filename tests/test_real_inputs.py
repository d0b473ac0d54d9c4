"""Real-world inputs read right (issue 18, items 6, 7, 11, 15, 16): healthy files with
start offsets, edit lists, VFR and timestamp gaps are not called damaged; interlaced
input is detected and can be deinterlaced; damaged timestamps are repaired instead of
aborting; huge images are refused before decoding; mixed-size folders are upscaled.
Every input is built here with PyAV, every output checked with PyAV."""

from __future__ import annotations

import logging
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import frame_times, make_video, read_frames
from PIL import Image

from vidsr import RunConfig
from vidsr.config import EncodeConfig
from vidsr.errors import InputError
from vidsr.media import images
from vidsr.media import probe as probe_module
from vidsr.media.probe import probe
from vidsr.media.timestamps import Discontinuities
from vidsr.pipeline.folders import upscale_folder
from vidsr.pipeline.video import upscale_video

W, H = 64, 48


def config(**kw: object) -> RunConfig:
    return RunConfig(model="bicubic", device="cpu", colour="off", overwrite=True, **kw)


def picture(i: int, w: int = W, h: int = H) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = (np.arange(w) * 255 // max(1, w - 1))[None]
    img[:, (i * 3) % (w - 4) : (i * 3) % (w - 4) + 4] = 255
    return img


def encode(
    path: Path,
    times_ms: list[int],
    options: dict | None = None,
    codec: str = "libx264",
    fmt_options: dict | None = None,
) -> None:
    """Encode test pictures at ``times_ms`` (milliseconds) into ``path``."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", options=fmt_options or {}) as out:
        v = out.add_stream(
            codec,
            rate=25,
            options={"preset": "ultrafast", **(options or {})}
            if codec == "libx264"
            else (options or {}),
        )
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.time_base = v.codec_context.time_base = tb
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(picture(i), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = t, tb
            out.mux(v.encode(frame))
        out.mux(v.encode())


def healthy_inputs(tmp_path: Path) -> dict[str, Path]:
    start = [10_000 + 40 * i for i in range(100)]
    vfr = [40 * i if i < 50 else 2000 + 100 * (i - 50) for i in range(100)]
    gap = [40 * i if i < 50 else 7000 + 40 * (i - 50) for i in range(100)]
    paths = {}
    for name, times in (
        ("start.mkv", start),
        ("start.ts", start),
        ("vfr.mkv", vfr),
        ("gap.ts", gap),
    ):
        paths[name] = tmp_path / name
        encode(paths[name], times)
    # An MP4 with an edit list that discards its first 10 frames (what `ffmpeg -ss` with
    # stream copy writes): packets remuxed with timestamps shifted 0.4 s below zero.
    base = tmp_path / "base.mp4"
    encode(base, [40 * i for i in range(50)], {"g": "25", "bf": "0"})
    edit = paths["edit.mp4"] = tmp_path / "edit.mp4"
    with av.open(str(base)) as src, av.open(str(edit), "w") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        shift = int(Fraction(2, 5) / stream.time_base)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = copy
            out.mux(packet)
    return paths


def test_healthy_files_are_not_called_damaged(tmp_path: Path) -> None:
    """Item 6: start offset, edit list, VFR, TS gap: the expected count is right (the
    progress bar's total) and no frame is reported lost."""
    decoded = {"start.mkv": 100, "start.ts": 100, "vfr.mkv": 100, "gap.ts": 100, "edit.mp4": 40}
    for name, path in healthy_inputs(tmp_path).items():
        info = probe(path)
        assert info.frame_count == decoded[name], name
        summary = upscale_video(path, tmp_path / f"out_{name}.mkv", config())
        assert summary.frames == decoded[name] == len(read_frames(summary.output)), name
        assert summary.frames_lost == 0, name
    assert probe(tmp_path / "start.mkv").start_seconds == pytest.approx(10.0)


def test_a_truncated_file_still_reports_its_lost_frames(tmp_path: Path) -> None:
    src = tmp_path / "in.mkv"
    encode(src, [40 * i for i in range(60)])
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    summary = upscale_video(cut, tmp_path / "o.mkv", config())
    assert summary.frames_lost > 20 and summary.frames + summary.frames_lost >= 55


def with_long_audio(path: Path, frames: int, audio_extra: float, fmt_options: dict) -> Path:
    """``frames`` video frames at 25 fps (keyframe each second) and AAC audio lasting
    ``audio_extra`` seconds past the last video frame's end."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", options=fmt_options) as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.time_base = v.codec_context.time_base = tb
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(i), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = 40 * i, tb
            out.mux(v.encode(frame))
        out.mux(v.encode())
        silence = np.zeros((2, 1024), np.float32)
        for start in range(0, int((frames * 0.04 + audio_extra) * 48000), 1024):
            samples = av.AudioFrame.from_ndarray(silence, format="fltp", layout="stereo")
            samples.sample_rate, samples.pts = 48000, start
            out.mux(a.encode(samples))
        out.mux(a.encode())
    return path


LONG_AUDIO_CONTAINERS = {
    "mkv": ("in.mkv", {}),
    "mp4": ("in.mp4", {}),
    "fragmented mp4": ("in.mp4", {"movflags": "frag_keyframe+empty_moov"}),
    "ts": ("in.ts", {}),
}


@pytest.mark.parametrize("extra", [0.5, 3.0])
@pytest.mark.parametrize("kind", list(LONG_AUDIO_CONTAINERS))
@pytest.mark.parametrize("scan", ["whole file", "tail of a large file"])
def test_audio_longer_than_video_is_not_called_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, extra: float, scan: str
) -> None:
    """Item 6: the file's duration is the audio's; the expected count (the progress
    bar's total) and the lost frames come from the video stream's own end."""
    if scan != "whole file":  # as for a file over the size whose packets are counted
        monkeypatch.setattr(probe_module, "COUNT_PACKETS_BYTES", 0)
        monkeypatch.setattr(probe_module, "TAIL_SECONDS", 1.0)
    name, fmt_options = LONG_AUDIO_CONTAINERS[kind]
    src = with_long_audio(tmp_path / name, 100, extra, fmt_options)
    info = probe(src)
    assert info.frame_count == 100 and info.end_seconds == pytest.approx(4.0, abs=0.05)
    summary = upscale_video(src, tmp_path / "out.mkv", config())
    assert summary.frames == 100 and summary.frames_lost == 0
    assert summary.expected_frames == 100


@pytest.mark.parametrize("scan", ["whole file", "tail of a large file"])
def test_a_truncated_file_with_long_audio_still_reports_its_lost_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan: str
) -> None:
    if scan != "whole file":
        monkeypatch.setattr(probe_module, "COUNT_PACKETS_BYTES", 0)
        monkeypatch.setattr(probe_module, "TAIL_SECONDS", 1.0)
    src = with_long_audio(tmp_path / "in.mkv", 100, 0.5, {})
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    summary = upscale_video(cut, tmp_path / "o.mkv", config())
    assert summary.frames < 50 and summary.frames_lost > 40


def interlaced(tmp_path: Path, name: str, codec: str, options: dict) -> Path:
    path = tmp_path / name
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=25, options=options)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        for i in range(20):
            img = picture(i)
            img[::2] //= 2  # the two fields differ
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode())
    return path


def test_interlaced_input_is_detected_and_deinterlaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 7: tff H.264 and MPEG-2 are detected; without --deinterlace a warning and the
    field order kept; with it progressive, one frame per frame or per field."""
    h264 = interlaced(
        tmp_path,
        "tff.mkv",
        "libx264",
        {"preset": "ultrafast", "flags": "+ildct+ilme", "x264-params": "tff=1"},
    )
    mpeg2 = interlaced(tmp_path, "m2.ts", "mpeg2video", {"flags": "+ilme+ildct", "top": "1"})
    assert probe(h264).field_order == "tt" and probe(mpeg2).interlaced
    with caplog.at_level(logging.WARNING):
        woven = upscale_video(h264, tmp_path / "woven.mkv", config())
    assert sum("is interlaced" in r.message and "comb" in r.message for r in caplog.records) == 1
    with av.open(str(woven.output)) as c:
        assert c.streams.video[0].codec_context.field_order == 2  # tt, as the input
    for src in (h264, mpeg2):
        for mode, frames, rate in (("frame", 20, 25), ("field", 40, 50)):
            out = tmp_path / f"{src.stem}_{mode}.mkv"
            upscale_video(src, out, config(deinterlace=mode))
            with av.open(str(out)) as c:
                stream = c.streams.video[0]
                assert stream.codec_context.field_order in (0, 1)  # progressive
                assert stream.average_rate == rate
                times = [f.time for f in c.decode(stream)]
            assert len(times) == frames
            steps = np.diff(times)
            assert np.allclose(steps, 1 / rate, atol=1e-3), (src.name, mode, steps)


@pytest.mark.parametrize("codec", ["mpeg4", "mpeg2video"])
def test_damaged_timestamps_are_repaired_not_fatal(tmp_path: Path, codec: str) -> None:
    """Item 15: a copied audio packet whose dts goes backwards, and two video frames with
    one pts, are repaired, counted, and the run finishes. MPEG-2 encodes on a grid of
    whole frames: the repeated frame is moved a whole frame on, not one tick."""
    plain = tmp_path / "plain.mkv"
    with av.open(str(plain), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        packets = []
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(picture(i), format="rgb24")
            frame.pts = i
            packets += v.encode(frame)
        packets += v.encode()
        for start in range(0, 2 * 48000, 1024):
            af = av.AudioFrame.from_ndarray(
                np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
            )
            af.sample_rate, af.pts = 48000, start
            packets += a.encode(af)
        packets += a.encode()
        for packet in packets:  # video frame 21 gets frame 20's time
            if packet.stream.type == "video" and packet.pts == 21:
                packet.pts = packet.dts = 20
        for packet in sorted(packets, key=lambda p: float(p.dts * p.time_base)):
            out.mux(packet)
    # The muxer refuses a backwards dts, so patch one audio block's time in the file
    # (a SimpleBlock: track number, then a 16-bit time relative to its cluster).
    with av.open(str(plain)) as c:
        positions = [p.pos for p in c.demux(c.streams.audio[0]) if p.size]
    data = bytearray(plain.read_bytes())
    pos = positions[30]
    rel = int.from_bytes(data[pos + 1 : pos + 3], "big", signed=True) - 64
    data[pos + 1 : pos + 3] = rel.to_bytes(2, "big", signed=True)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    with av.open(str(damaged)) as c:
        dts = [p.dts for p in c.demux(c.streams.audio[0]) if p.size]
    assert dts[30] < dts[29]  # the input really is damaged
    # mpeg4 refuses a repeated pts; the MP4 muxer a backwards (or repeated) dts.
    summary = upscale_video(damaged, tmp_path / "out.mp4", config(encode=EncodeConfig(codec=codec)))
    assert summary.timestamp_repairs == 2
    with av.open(str(summary.output)) as c:
        assert len(list(c.decode(video=0))) == 50
    with av.open(str(summary.output)) as c:
        audio = [p.dts for p in c.demux(c.streams.audio[0]) if p.size]
    assert len(audio) == len(dts) and all(b > a for a, b in pairwise(audio))


def test_a_huge_image_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 16: a small PNG of 9000x9000 pixels: one line naming size and limit, and
    nothing decoded (cv2.imread is never reached)."""
    folder = tmp_path / "big"
    folder.mkdir()
    Image.new("RGB", (9000, 9000), (10, 20, 30)).save(folder / "big.png", compress_level=9)
    assert (folder / "big.png").stat().st_size < 1_000_000
    monkeypatch.setattr(images, "available_memory", lambda: 2 * 2**30)
    monkeypatch.setattr(cv2, "imread", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(InputError) as error:
        upscale_folder(folder, tmp_path / "out", config())
    message = str(error.value)
    assert "9000x9000" in message and "2.0 GiB" in message and "\n" not in message
    assert images.frame_memory_bytes(9000, 9000, 3, 1, 2) > 4 * 2**30
    assert images.available_memory() is not None  # the real one reads /proc/meminfo


def test_a_folder_of_several_sizes_is_upscaled(tmp_path: Path) -> None:
    """Item 11: each image keeps its name and format at its own size x2; a video from it
    is refused in one line."""
    folder = tmp_path / "photos"
    folder.mkdir()
    sizes = {"a.png": (64, 48), "b.jpg": (40, 30), "c.png": (64, 48), "d.png": (33, 21)}
    for i, (name, (w, h)) in enumerate(sizes.items()):
        cv2.imwrite(str(folder / name), picture(i, w, h))
    summary = upscale_folder(folder, tmp_path / "out", RunConfig(model="bicubic", device="cpu"))
    assert summary.frames == 4
    for name, (w, h) in sizes.items():
        out = cv2.imread(str(tmp_path / "out" / name))
        assert out.shape[:2] == (2 * h, 2 * w), name
    with pytest.raises(InputError, match="differ in size") as error:
        upscale_folder(folder, tmp_path / "out.mp4", config())
    assert "\n" not in str(error.value)


def _packet_times(path: Path, kind: str) -> list[Fraction]:
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [p.pts * p.time_base for p in c.demux(stream) if p.pts is not None and p.size]


def test_transport_streams_joined_end_to_end_continue_the_timeline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two recordings ``cat``-ed: the second's timestamps restart at 0. ffmpeg moves it on
    (leaving a gap); vidsr moves it to right after the first, every stream alike."""
    part = make_video(tmp_path / "part.ts", n=50, audio=True)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    with caplog.at_level(logging.WARNING):
        summary = upscale_video(joined, tmp_path / "joined.mkv", config())
    assert "timestamps restart" in caplog.text
    assert summary.frames == 100 and summary.timestamp_repairs == 0
    video = sorted(frame_times(tmp_path / "joined.mkv"))
    audio = _packet_times(tmp_path / "joined.mkv", "audio")
    assert len(video) == 100 and all(a < b for a, b in pairwise(audio))
    # Before: the second half squeezed into 1 ms steps after the first.
    shift = video[50] - video[0]
    assert [t - shift for t in video[50:]] == video[:50]
    assert Fraction(2) <= shift <= Fraction(22, 10)  # after the first part's audio end
    audio_shift = next(t for t in audio if t >= shift) - audio[0]
    assert audio_shift == shift  # the same move for the audio: still in sync


def test_a_lone_backwards_packet_is_not_taken_for_a_restart(tmp_path: Path) -> None:
    """One garbled dts 1.5 s back is left for the per-packet repair, not joined."""
    part = make_video(tmp_path / "part.ts", n=50, audio=True)
    with av.open(str(part)) as c:
        packets = [p for p in c.demux() if p.dts is not None]
        audio = [i for i, p in enumerate(packets) if p.stream.type == "audio"]
        garbled = packets[audio[40]]
        garbled.dts -= round(Fraction(3, 2) / garbled.time_base)
        before = {id(p): p.dts for p in packets}
        joins = Discontinuities()
        out = [q for p in packets for q in joins.push(p)] + joins.flush()
        assert joins.joins == 0 and len(out) == len(packets)
        assert {id(p): p.dts for p in out} == before  # all passed on, none moved


def unlabelled_interlaced(path: Path, parity: str) -> Path:
    """MPEG-2 in NUT, which stores no field order: only the frames say, each flagged by
    FFmpeg's ``setfield`` (``tff``/``bff``) before the encoder writes the flag."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=W, height=H, format="yuv420p", time_base=Fraction(1, 25))
    flag, sink = graph.add("setfield", parity), graph.add("buffersink")
    source.link_to(flag)
    flag.link_to(sink)
    graph.configure()
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg2video", rate=25, options={"flags": "+ilme+ildct"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        for i in range(10):
            img = picture(i)
            img[::2] //= 2  # the two fields differ
            source.push(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
            frame = graph.pull()
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode())
    return path


@pytest.mark.parametrize(("parity", "order", "code"), [("bff", "bb", 3), ("tff", "tt", 2)])
def test_unlabelled_field_order_is_read_from_the_frames(
    tmp_path: Path, parity: str, order: str, code: int
) -> None:
    """Before, an interlaced stream that does not state its field order was taken as
    top field first; now the decoded frames' own flag decides, as bwdif's ``auto`` does."""
    src = unlabelled_interlaced(tmp_path / f"{parity}.nut", parity)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.field_order == 0  # the stream says nothing
    assert probe(src).field_order == order
    woven = upscale_video(src, tmp_path / f"{parity}_x2.mkv", config())
    with av.open(str(woven.output)) as c:
        assert c.streams.video[0].codec_context.field_order == code
