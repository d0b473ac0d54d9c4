"""vidsr's interpolation path against the ffmpeg command line, and vidsr's start-up time.

What a user compares first, on the same input and the same x264 settings:

    ffmpeg -i in.mp4 -vf scale=iw*2:ih*2:flags=bicubic -c:v libx264 -preset medium -crf 18
           -g G out.mp4
    vidsr upscale in.mp4 -o out.mp4 --model bicubic --color off --preset medium --crf 18

(``-g G`` gives ffmpeg vidsr's default keyframe interval, 2 s, so both encoders do the same
work.) Each run is a fresh process timed from launch to exit, interpreter start and imports
included on both sides; runs alternate (ffmpeg, vidsr, ffmpeg, ...) and each figure is the
median of ``--repeats``. CPU seconds are the child's user + system time (``getrusage``): on
a machine other jobs share, wall time moves with their load, CPU time much less.

Inputs: 640x360 is Vid4's clips centre-cropped (as ``models_vs_opencv.py`` makes them;
FFmpeg's ``testsrc2`` where Vid4 is absent); larger sizes are ``testsrc2``.

Start-up: the wall time of ``vidsr upscale`` on a one-frame 640x360 clip (launch to exit:
the first frame decoded, upscaled, encoded and the file closed), against ffmpeg's; and
what the interpreter spends importing torch and vidsr's pipeline.

Without ``ffmpeg`` on ``PATH`` the comparison is skipped (said so) and the vidsr figures
still print.

Runners: the ffmpeg CLI, ``vidsr bicubic`` (the MATLAB-exact kernel, the default) and
``vidsr swscale`` (the same run with ``--resampler swscale``: FFmpeg's own scaler through a
PyAV filter graph; ``--no-swscale`` leaves it out), each with its ratio to the ffmpeg CLI.

``--baseline-python`` adds another runner, another checkout's vidsr (``PYTHON -m vidsr``),
alternated with the others: before and after figures from one run.

Usage: python benchmarks/vs_ffmpeg.py [--sizes 640x360,1920x1080] [--frames 200,24]
       [--repeats 3] [--preset medium] [--crf 18] [--parts speed,startup] [--json out.json]
       [--baseline-python /path/to/main/.venv/bin/python] [--cv-threads 1]
       [--parts speed,startup,kernel]

``--parts kernel`` times the 8-bit bicubic kernel on one luma plane at 640x360 and
1920x1080 (x2, CPU time of all the process's threads, median of 15, OpenCV's default
threads and one thread) in this checkout and
the baseline's, beside OpenCV's own bicubic resize (a = -0.75, not MATLAB's) as the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner, render_clip  # noqa: E402
from models_vs_opencv import make_vid4_clip  # noqa: E402

import vidsr  # noqa: E402

RATE = 25
SWSCALE = "vidsr swscale"  # --resampler swscale: FFmpeg's own scaler, not MATLAB's kernel
# Runs start outside any checkout: ``python -m vidsr`` puts its working directory first on
# sys.path, so a baseline interpreter started in this checkout would import this vidsr.
NEUTRAL_CWD = tempfile.gettempdir()


def timed(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` to completion; (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=NEUTRAL_CWD)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def vidsr_argv(
    src: Path, dst: Path, preset: str, crf: int, python: str = sys.executable, *extra: str
) -> list[str]:
    return [
        python, "-m", "vidsr", "upscale", str(src), "-o", str(dst),
        "--model", "bicubic", "--color", "off", "--device", "cpu",
        "--preset", preset, "--crf", str(crf), "--overwrite", *extra,
    ]  # fmt: skip


def ffmpeg_argv(ffmpeg: str, src: Path, dst: Path, preset: str, crf: int) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(src),
        "-vf", "scale=iw*2:ih*2:flags=bicubic", "-c:v", "libx264",
        "-preset", preset, "-crf", str(crf), "-g", str(2 * RATE), str(dst),
    ]  # fmt: skip


def make_input(tmp: Path, size: tuple[int, int], frames: int) -> tuple[Path, str]:
    w, h = size
    path = tmp / f"in_{w}x{h}_{frames}.mp4"
    if (w, h) == (640, 360):
        return path, make_vid4_clip(path, frames, size, RATE)
    render_clip(path, frames, size, RATE)
    return path, f"FFmpeg testsrc2 {w}x{h}, {frames} frames, libx264 crf 18 veryfast {RATE} fps"


def alternate(runners: dict[str, list[str]], repeats: int) -> dict[str, list[tuple]]:
    """Each runner ``repeats`` times, in turn; {label: [(wall, cpu), ...]}."""
    runs: dict[str, list[tuple]] = {label: [] for label in runners}
    for _ in range(repeats):
        for label, argv in runners.items():
            runs[label].append(timed(argv))
    return runs


def medians(runs: list[tuple]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def print_ratio(label: str, ours: dict, theirs: dict, frames: int) -> dict:
    """Print ``label``'s speed against the ffmpeg CLI's (wall and CPU) and return both."""
    ratio, cpu_ratio = theirs["wall"] / ours["wall"], theirs["cpu"] / ours["cpu"]
    extra = 1000 * (ours["cpu"] - theirs["cpu"]) / frames
    verdict = "met" if ratio >= 0.95 else "not met"
    print(
        f"{label} speed / ffmpeg CLI speed: {ratio:.2f} wall, {cpu_ratio:.2f} CPU "
        f"({extra:+.1f} CPU ms/frame); target >= 0.95 wall: {verdict}"
    )
    return {"wall": ratio, "cpu": cpu_ratio}


def run_speed(args: argparse.Namespace, ffmpeg: str | None, tmp: Path) -> dict:
    results = {}
    for size, frames in zip(args.sizes, args.frames):
        src, desc = make_input(tmp, size, frames)
        w, h = size
        print(
            f"\n== x2 {w}x{h} -> {2 * w}x{2 * h}, {frames} frames, libx264 preset "
            f"{args.preset} crf {args.crf}, median of {args.repeats} alternated runs"
        )
        print(f"input: {desc}")
        runners = {"vidsr bicubic": vidsr_argv(src, tmp / "v.mp4", args.preset, args.crf)}
        if not args.no_swscale:
            runners[SWSCALE] = vidsr_argv(
                src, tmp / "w.mp4", args.preset, args.crf, sys.executable, "--resampler", "swscale"
            )
        if args.baseline_python:
            runners["vidsr baseline"] = vidsr_argv(
                src, tmp / "b.mp4", args.preset, args.crf, args.baseline_python
            )
        if args.cv_threads:
            runners[f"vidsr cv2 {args.cv_threads}thr"] = [
                "env",
                f"OPENCV_FOR_THREADS_NUM={args.cv_threads}",
                *vidsr_argv(src, tmp / "c.mp4", args.preset, args.crf),
            ]
        if ffmpeg:
            runners = {
                "ffmpeg CLI": ffmpeg_argv(ffmpeg, src, tmp / "f.mp4", args.preset, args.crf),
                **runners,
            }
        load = os.getloadavg()[0]
        runs = alternate(runners, args.repeats)
        print(f"load average (1 min) before / after: {load:.2f} / {os.getloadavg()[0]:.2f}")
        row = {}
        for label, got in runs.items():
            wall, cpu = medians(got)
            row[label] = {"wall": wall, "cpu": cpu, "runs": got}
            print(
                f"{label:<16} {wall:7.2f} s wall ({frames / wall:6.2f} fps)  "
                f"{cpu:7.2f} s CPU ({1000 * cpu / frames:6.1f} ms/frame)  "
                f"runs: {', '.join(f'{r[0]:.2f}/{r[1]:.2f}' for r in got)}"
            )
        if ffmpeg:
            for label in ("vidsr bicubic", SWSCALE):
                if label in row:
                    row[f"ratios {label}"] = print_ratio(
                        label, row[label], row["ffmpeg CLI"], frames
                    )
            ratios = row["ratios vidsr bicubic"]
            row["ratio_wall"], row["ratio_cpu"] = ratios["wall"], ratios["cpu"]
        else:
            print("ffmpeg CLI: skipped (no ffmpeg on PATH)")
        results[f"{w}x{h}"] = {"input": desc, "frames": frames, **row}
    return results


def run_startup(args: argparse.Namespace, ffmpeg: str | None, tmp: Path) -> dict:
    src, _ = make_input(tmp, (640, 360), 1)
    print(f"\n== start-up: one 640x360 frame, launch to exit, median of {args.repeats}")
    runners = {
        "vidsr upscale --model bicubic": vidsr_argv(src, tmp / "s.mp4", args.preset, args.crf),
        "vidsr --version": [sys.executable, "-m", "vidsr", "--version"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import vidsr.pipeline.video'": [
            sys.executable,
            "-c",
            "import vidsr.pipeline.video",
        ],  # fmt: skip
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    if args.baseline_python:
        runners["vidsr baseline upscale"] = vidsr_argv(
            src, tmp / "sb.mp4", args.preset, args.crf, args.baseline_python
        )
    if ffmpeg:
        runners["ffmpeg CLI"] = ffmpeg_argv(ffmpeg, src, tmp / "sf.mp4", args.preset, args.crf)
    runs = alternate(runners, args.repeats)
    results = {}
    for label, got in runs.items():
        wall, cpu = medians(got)
        results[label] = {"wall": wall, "cpu": cpu}
        print(f"{label:<42} {wall:6.2f} s wall {cpu:6.2f} s CPU")
    first = results["vidsr upscale --model bicubic"]["wall"]
    print(
        f"first frame encoded (and file closed) {first:.2f} s after launch; target <= 1.5 s: "
        f"{'met' if first <= 1.5 else 'not met'}"
    )
    return results


KERNEL_SNIPPET = """
import sys, time
import cv2, numpy as np
from vidsr.models.baselines import PolyphaseUpsampler
cv2.setNumThreads(int(sys.argv[1]))
net = PolyphaseUpsampler(2, "bicubic")
for w, h in ((640, 360), (1920, 1080)):
    rng = np.random.default_rng(0)
    plane = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (5, 5), 2)
    def median_ms(fn):
        fn(); times = []
        for _ in range(15):
            start = time.process_time(); fn(); times.append(time.process_time() - start)
        return 1000 * sorted(times)[7]
    ours = median_ms(lambda: net.upsample_u8(plane))
    floor = median_ms(lambda: cv2.resize(plane, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC))
    print(f"{w}x{h} {ours:.2f} {floor:.2f}")
"""


def run_kernel(args: argparse.Namespace) -> dict:
    print("\n== 8-bit bicubic kernel, one luma plane x2, CPU ms (all threads), median of 15")
    pythons = {"this checkout": sys.executable}
    if args.baseline_python:
        pythons["baseline"] = args.baseline_python
    results: dict = {}
    for threads in (0, 1):
        shown = "OpenCV default threads" if threads == 0 else "1 OpenCV thread"
        cv_threads = -1 if threads == 0 else 1  # setNumThreads(-1): OpenCV's default
        for label, python in pythons.items():
            done = subprocess.run(
                [python, "-c", KERNEL_SNIPPET, str(cv_threads)],
                capture_output=True,
                text=True,
                check=True,
                cwd=NEUTRAL_CWD,
            )
            for line in done.stdout.split("\n"):
                if not line.strip():
                    continue
                size, ours, floor = line.split()
                results.setdefault(shown, {}).setdefault(label, {})[size] = float(ours)
                results[shown]["cv2.resize INTER_CUBIC " + size] = float(floor)
                print(
                    f"{shown:<24} {label:<14} {size:>9}: {float(ours):6.2f} ms "
                    f"(cv2.resize INTER_CUBIC {float(floor):5.2f} ms)"
                )
    return results


def versions(ffmpeg: str | None) -> str:
    line = "ffmpeg CLI: absent"
    if ffmpeg:
        out = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=False)
        line = f"ffmpeg CLI: {ffmpeg}: {out.stdout.splitlines()[0] if out.stdout else '?'}"
    return f"vidsr {vidsr.__version__}, device cpu\n{line}"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [(int(w), int(h)) for w, h in (s.split("x") for s in text.split(","))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("640x360,1920x1080"))
    p.add_argument("--frames", type=lambda s: [int(x) for x in s.split(",")], default=[200, 24])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--preset", default="medium")
    p.add_argument("--crf", type=int, default=18)
    p.add_argument("--parts", default="speed,startup")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--baseline-python",
        default=None,
        help="also run `PYTHON -m vidsr` (another checkout's venv, e.g. main's): before/after",
    )
    p.add_argument(
        "--no-swscale",
        action="store_true",
        help="leave out the `vidsr --resampler swscale` runner (FFmpeg's scaler)",
    )
    p.add_argument(
        "--cv-threads",
        type=int,
        default=None,
        help="also run vidsr with OpenCV limited to N threads (OPENCV_FOR_THREADS_NUM)",
    )
    args = p.parse_args()
    if len(args.frames) != len(args.sizes):
        p.error("--frames needs one count per --sizes entry")
    ffmpeg = shutil.which("ffmpeg")
    print(banner())
    print(versions(ffmpeg))
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="vidsr-vs-ffmpeg-") as tmp:
        parts = args.parts.split(",")
        if "speed" in parts:
            results["speed"] = run_speed(args, ffmpeg, Path(tmp))
        if "startup" in parts:
            results["startup"] = run_startup(args, ffmpeg, Path(tmp))
        if "kernel" in parts:
            results["kernel"] = run_kernel(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
