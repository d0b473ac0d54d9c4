"""End-to-end behaviour of the video pipeline through the Python API (CPU, tiny videos)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frame_times, make_video, packet_payloads, read_frames

from vidsr import EncodeConfig, OutputExistsError, RunConfig
from vidsr.pipeline.output import partial_path
from vidsr.pipeline.video import upscale_video


def run(src: Path, dst: Path, **kw) -> None:
    encode = EncodeConfig(
        **{k: kw.pop(k) for k in ("codec", "pix_fmt", "crf", "preset") if k in kw}
    )
    upscale_video(
        src, dst, RunConfig(model=kw.pop("model", "bicubic"), device="cpu", encode=encode, **kw)
    )


def test_frame_count_size_and_timestamps(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=12, size=(66, 38))
    dst = tmp_path / "out.mp4"
    run(src, dst, scale=2, batch_size=5)  # 12 frames: two full batches and a partial one
    frames = read_frames(dst)
    assert len(frames) == 12
    assert (frames[0].width, frames[0].height) == (132, 76)
    assert frame_times(dst) == frame_times(src)
    assert not partial_path(dst).exists()


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    pts_ms = [0, 40, 90, 100, 180, 400, 433, 500]
    src = make_video(tmp_path / "vfr.mkv", pts_ms=pts_ms, audio=True)
    dst = tmp_path / "vfr_x2.mkv"
    run(src, dst, scale=2)
    assert frame_times(dst) == [Fraction(p, 1000) for p in pts_ms]


def test_audio_and_subtitles_copied_bit_exact(tmp_path: Path) -> None:
    src = make_video(tmp_path / "av.mp4", n=10, audio=True, subtitles=True)
    dst = tmp_path / "av_x2.mp4"
    run(src, dst, scale=2)
    assert packet_payloads(dst, "audio") == packet_payloads(src, "audio")
    assert packet_payloads(dst, "subtitle") == packet_payloads(src, "subtitle")
    with av.open(str(dst)) as c:
        assert c.streams.audio[0].metadata.get("language") == "fra"
        assert c.streams.subtitles[0].metadata.get("language") == "eng"


def test_mkv_subrip_copied(tmp_path: Path) -> None:
    src = make_video(tmp_path / "s.mkv", n=6, subtitles=True, audio=True)
    dst = tmp_path / "s_x2.mkv"
    run(src, dst, scale=2)
    assert packet_payloads(dst, "subtitle") == [b"Hello vidsr"]
    assert packet_payloads(dst, "audio") == packet_payloads(src, "audio")


def test_colour_tags_rotation_and_title_carried(tmp_path: Path) -> None:
    tags = (1, 1, 1, 1)  # BT.709 primaries, transfer, matrix; limited range
    src = make_video(tmp_path / "t.mp4", n=4, rotation=90, colour_tags=tags, title="A title")
    dst = tmp_path / "t_x2.mp4"
    run(src, dst, scale=2)
    with av.open(str(dst)) as c:
        assert c.metadata.get("title") == "A title"
        cc = c.streams.video[0].codec_context
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == tags
        first = next(c.decode(video=0))
        assert first.rotation == 90


def test_ten_bit_input_gives_ten_bit_output(tmp_path: Path) -> None:
    src = make_video(tmp_path / "ten.mkv", n=4, codec="libx265", pix_fmt="yuv420p10le")
    dst = tmp_path / "ten_x2.mkv"
    run(src, dst, scale=2, codec="libx265")
    frames = read_frames(dst)
    assert frames[0].format.name == "yuv420p10le"
    assert len(frames) == 4


def test_odd_frame_size_at_scale_three(tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mp4", n=3, size=(66, 38))
    dst = tmp_path / "odd_x3.mp4"
    run(src, dst, scale=3)
    frames = read_frames(dst)
    assert (frames[0].width, frames[0].height) == (198, 114)


def test_existing_output_refused_without_overwrite(tmp_path: Path, tiny_video: Path) -> None:
    dst = tmp_path / "exists.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        run(tiny_video, dst, scale=2)
    assert dst.read_bytes() == b"keep me"
    run(tiny_video, dst, scale=2, overwrite=True)
    assert len(read_frames(dst)) == 8


def test_tiled_output_equals_untiled(tmp_path: Path) -> None:
    src = make_video(tmp_path / "big.mkv", n=3, size=(96, 64))
    whole, tiled = tmp_path / "whole.mkv", tmp_path / "tiled.mkv"
    run(src, whole, scale=2, codec="ffv1", model="lanczos")
    run(src, tiled, scale=2, codec="ffv1", model="lanczos", tile=24)
    for a, b in zip(read_frames(whole), read_frames(tiled)):
        diff = np.abs(a.to_ndarray().astype(int) - b.to_ndarray().astype(int))
        assert diff.max() <= 1  # float summation order may flip a rounding


def test_upscaled_frames_follow_the_source(tmp_path: Path) -> None:
    """Lossless in and out: the bicubic upscale, downsampled again, is close to the input."""
    src = make_video(tmp_path / "ll.mkv", n=3, size=(64, 48), codec="ffv1", pix_fmt="yuv444p")
    dst = tmp_path / "ll_x2.mkv"
    run(src, dst, scale=2, codec="ffv1", pix_fmt="yuv444p")
    for a, b in zip(read_frames(src), read_frames(dst)):
        small = b.to_ndarray(format="rgb24").reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
        err = np.abs(small - a.to_ndarray(format="rgb24").astype(float)).mean()
        assert err < 3.0
