"""Shared fixtures: tiny deterministic videos written with PyAV (no downloads)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB test picture that encodes ``index`` (a moving bar on a
    smooth gradient), so frames are distinguishable and compress well."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = (xx * 255 // max(1, width - 1)).astype(np.uint8)
    g = (yy * 255 // max(1, height - 1)).astype(np.uint8)
    b = np.full((height, width), (index * 37) % 256, np.uint8)
    img = np.stack([r, g, b], axis=-1)
    x0 = (index * 5) % max(1, width - 4)
    img[:, x0 : x0 + 4] = 255 - img[:, x0 : x0 + 4]
    return img


def smooth_image(seed: int, h: int = 48, w: int = 48, period: float = 8.0) -> np.ndarray:
    """A smooth random RGB image (three sine gratings), ``(h, w, 3)`` uint8; ``period``
    sets how fine its detail is."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / period
    chans = [
        np.sin(xx * rng.uniform(0.5, 1.5) + yy * rng.uniform(0.2, 1.0) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    return ((np.stack(chans, -1) * 0.4 + 0.5) * 255).astype(np.uint8)


def make_video(
    path: Path,
    n: int = 8,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rate: int = 25,
    pts_ms: list[int] | None = None,
    audio: bool = False,
    subtitles: bool = False,
    rotation: int = 0,
    colour_tags: tuple[int, int, int, int] | None = None,
    title: str | None = None,
    frames: list[np.ndarray] | None = None,
) -> Path:
    """Write a test video. ``size`` is ``(width, height)``; ``pts_ms`` makes it
    variable-frame-rate (timestamps in milliseconds); ``colour_tags`` is
    ``(primaries, trc, colorspace, range)`` as FFmpeg enum values."""
    width, height = size
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        if title:
            out.metadata["title"] = title
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = tb
        video.codec_context.time_base = tb
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            video.set_display_rotation(rotation)
        if colour_tags:
            cc = video.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = colour_tags
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=48000)
            astream.layout = "stereo"
            astream.metadata["language"] = "fra"
        sstream = None
        if subtitles:
            sub_codec = "subrip" if path.suffix == ".mkv" else "mov_text"
            sstream = out.add_mux_stream(sub_codec)
            sstream.time_base = tb
            sstream.metadata["language"] = "eng"
        times = pts_ms if pts_ms is not None else [round(i * 1000 / rate) for i in range(n)]
        for i, pts in enumerate(times):
            img = frames[i] if frames is not None else pattern_frame(i, width, height)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, tb
            for packet in video.encode(frame):
                out.mux(packet)
            if sstream is not None and i == 1:
                text = b"Hello vidsr"
                # mov_text samples carry a 2-byte length prefix; SubRip packets are plain text.
                data = text if path.suffix == ".mkv" else len(text).to_bytes(2, "big") + text
                packet = av.Packet(data)
                packet.stream, packet.pts, packet.dts, packet.duration, packet.time_base = (
                    sstream,
                    pts,
                    pts,
                    500,
                    tb,
                )
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if astream is not None:
            total = int((times[-1] / 1000 + 0.1) * 48000)
            rng = np.random.default_rng(0)
            for start in range(0, total, 1024):
                samples = (rng.standard_normal((2, 1024)) * 0.05).astype(np.float32)
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, start
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def write_lossless_video(path: Path, frames: list[np.ndarray]) -> Path:
    """Write ``frames`` (``(H, W, 3)`` uint8 RGB) as 25 fps FFV1, lossless: decoded frames
    equal ``frames`` exactly."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def frame_times(path: Path) -> list[Fraction]:
    """Presentation time of each video frame, exact (pts x time_base)."""
    with av.open(str(path)) as c:
        tb = c.streams.video[0].time_base
        return [Fraction(f.pts) * tb for f in c.decode(video=0)]


def packet_payloads(path: Path, kind: str) -> list[bytes]:
    """Payloads of every packet of the ``kind`` streams, skipping the empty mov_text
    samples (b"\\0\\0") that the MP4 muxer writes itself to fill gaps between subtitles."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(streams) if p.size > 0 and bytes(p) != b"\0\0"]


# The quickest real upscale: the bicubic baseline on the CPU.
BICUBIC_CPU = ("--model", "bicubic", "--device", "cpu")


def upscale_main(src: Path, out: Path | str, *options: str) -> int:
    """``vidsr upscale SRC -o OUT OPTIONS`` in this process; returns the exit code."""
    from vidsr.cli import main

    return main(["upscale", str(src), "-o", str(out), *options])


def run_cli(
    *args: str, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m vidsr ARGS`` in a subprocess (as a user would), capturing output."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("VIDSR_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "vidsr", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


# A `vidsr upscale` slow enough to be caught mid-way (about 10 frames/s on one core).
SLOW_UPSCALE = (
    "--scale",
    "4",
    "--model",
    "lanczos",
    "--device",
    "cpu",
    "--batch-size",
    "1",
    "--preset",
    "slow",
)


def start_cli(*args: str, **popen: Any) -> subprocess.Popen:
    """Start ``python -m vidsr ARGS`` in a subprocess (text stdout/stderr piped), to signal
    or race it; ``popen`` goes to :class:`subprocess.Popen`."""
    env = dict(os.environ)
    env.pop("VIDSR_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "vidsr", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


@contextlib.contextmanager
def small_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``64k``) mounted at the new folder ``mount_point`` while
    the block runs; skips the test where it cannot be mounted (needs root and mount)."""
    mount_point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, check=False)


def dataset_argv(out: Path, *extra: str) -> list[str]:
    """``vidsr dataset build`` arguments for a tiny x2 set of 16-pixel patches in ``out``;
    ``extra`` adds options and the inputs."""
    return ["dataset", "build", "--out", str(out), "--scale", "2", "--patch", "16", *extra]


def train_argv(data: Path, run: Path, *extra: str, arch: str = "fast", steps: int = 2) -> list[str]:
    """``vidsr train`` arguments for a few CPU steps of ``arch`` x2 on the dataset ``data``,
    in the run folder ``run``; ``extra`` adds options."""
    return [
        "train",
        "--arch",
        arch,
        "--scale",
        "2",
        "--data",
        str(data),
        "--steps",
        str(steps),
        "--out",
        str(run),
        "--device",
        "cpu",
        *extra,
    ]


@pytest.fixture
def tiny_video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "tiny.mp4")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
