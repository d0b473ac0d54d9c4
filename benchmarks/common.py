"""Helpers shared by the benchmarks: environment banner, test clips, timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


def banner() -> str:
    """One block naming the machine and library versions, printed before any figure."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
            cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"machine: {cpu}, {os.cpu_count()} logical cores, GPU: {gpu}\n"
        f"python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), "
        f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), numpy {np.__version__}"
    )


def render_clip(
    path: Path, frames: int, size: tuple[int, int], rate: int = 25, gop: int | None = None
) -> Path:
    """H.264 clip of FFmpeg's ``testsrc2`` pattern, ``size`` = (width, height), a keyframe
    every ``gop`` frames (default: x264's)."""
    if path.exists():
        return path
    width, height = size
    spec = f"testsrc2=size={width}x{height}:rate={rate}"
    options = {"crf": "18", "preset": "veryfast"} | ({"g": str(gop)} if gop else {})
    with av.open(spec, format="lavfi") as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls, and all the times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
