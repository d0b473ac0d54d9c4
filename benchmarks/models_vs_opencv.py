"""vidsr against OpenCV dnn_superres (ESPCN, FSRCNN, FSRCNN-small): quality and speed.

What users would run instead of vidsr on a CPU is OpenCV's ``dnn_superres`` with the small
public ESPCN/FSRCNN graphs. This script puts both side by side, on the same inputs:

quality  Y-PSNR and SSIM on Set5 and Set14 under vidsr's protocol (``vidsr eval``): HR
         mod-cropped, LR by MATLAB-compatible bicubic (:func:`vidsr.eval.resize.bicubic_downscale`),
         Y of BT.601 studio-range ``rgb2ycbcr``, ``scale`` border pixels cropped, mean over
         images. vidsr's shipped models are scored by :func:`vidsr.eval.evaluate.evaluate`; the
         peers' outputs by the same :mod:`vidsr.eval.metrics` code, two ways:
           ``upsample()``  what a user gets: the LR image (as BGR) through
                           ``DnnSuperResImpl.upsample``, which runs the net on full-range
                           YCrCb Y rounded to uint8, enlarges chroma bilinearly and returns
                           uint8 BGR; scored on Y of that RGB, as vidsr scores RGB models;
           ``net on Y``    the bare network (``cv2.dnn``, same graph) on the protocol's
                           unrounded Y, mapped to the full range the peers were trained on,
                           and its float output mapped back and rounded once: how vidsr's
                           luma models are scored, so only the networks differ.
         Grayscale images (Set14 bridge) are their own Y for everybody: the peers get the
         one-channel plane, which ``upsample()`` takes as is.
         ``--lr`` also scores everybody on a second LR, the one the peers were trained on
         (Saafke/FSRCNN_Tensorflow ``data_utils.py``: ``cv2.resize`` INTER_CUBIC, which
         does not antialias), as a check of how much each side depends on its training
         degradation. (FFmpeg's swscale bicubic downscale gives an LR within 50-52 dB
         PSNR of the MATLAB one on Set5/Set14, so the first table is the one that matches
         video downscaled by FFmpeg.)
speed    end to end on the same 640x360 H.264 clip, x2 to 1280x720: OpenCV's loop
         (``cv2.VideoCapture`` -> ``sr.upsample`` per frame -> writer, one frame at a time)
         against ``vidsr upscale`` with the fast model. The opencv-contrib wheel's FFmpeg has
         no libx264 (``cv2.VideoWriter`` 'avc1' fails), so the OpenCV loop's frames are
         encoded with PyAV libx264 at vidsr's settings (crf 23, preset veryfast, GOP 2 s,
         codec threads auto): only the upscaler and the loop differ. ``--writers pyav,cv2``
         adds the loop with ``cv2.VideoWriter`` 'mp4v' (MPEG-4 Part 2), what the OpenCV
         samples write. vidsr runs with ``--color off`` (no colour matching: the same work
         as the OpenCV loop) and with its default ``--color shot``. Each run is a fresh
         process; the clock runs from reading the model to closing the output (imports
         and interpreter start excluded on both sides; the column "incl. start" has
         them). Runs are interleaved and each figure is the median of ``--repeats``.
         The clip (unless ``--input``): the first ``--frames`` frames of Vid4's calendar,
         city, foliage and walk (cycled), each centre-cropped to 640x360 without
         resampling, encoded libx264 crf 18 veryfast yuv420p at 25 fps.
net      (optional) the network alone per 640x360 frame, both sides with the same thread
         count: the peers' ``upsample()`` on a one-channel plane (no colour work); vidsr's
         shipped models on the whole frame and in the tiles its CPU pipeline cuts.

On a machine where other processes hold cores, compare ``--threads 1`` too: torch's
OpenMP threads can slow down many times over when one of them is descheduled.

The peers need ``opencv-contrib-python-headless``, whose ``cv2`` clashes with the project's
``opencv-python``, so they run in a subprocess of another interpreter
(``benchmarks/opencv_peers.py``): give ``--peer-python`` (a venv's python) or
``--peer-pythonpath`` (a ``pip install --target`` folder, run with this python). Without it,
or without the ``.pb`` files, the peer rows are skipped with the reason printed. The .pb
files are Saafke/FSRCNN_Tensorflow and fannymonori/TF-ESPCN's (``--peers-dir``, default
``../shared/data/peers/opencv_dnn_superres`` beside the repository).

Usage:
    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install "opencv-contrib-python-headless<5" numpy av
    python benchmarks/models_vs_opencv.py --peer-python /tmp/peer-venv/bin/python
        [--parts quality,speed,net] [--lr matlab,opencv] [--scales 2,3,4]
        [--models fast,srcnn,perceptual] [--speed-model fast,fast-ecb]
        [--speed-peers ESPCN,FSRCNN]
        [--frames 100] [--repeats 3] [--threads 2] [--preset veryfast] [--input clip.mp4]
        [--writers pyav,cv2] [--peers ESPCN,FSRCNN,FSRCNN-small] [--peers-dir DIR]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner, render_clip

HERE = Path(__file__).resolve().parent
PEER_SCRIPT = HERE / "opencv_peers.py"
# shared/data beside the repository, or beside a folder above it (a git worktree)
DATA = next(
    (p / "shared" / "data" for p in HERE.parents[1:] if (p / "shared" / "data").is_dir()),
    HERE.parents[1] / "shared" / "data",
)
PEERS_DIR = DATA / "peers" / "opencv_dnn_superres"
SETS = (DATA / "images" / "Set5", DATA / "images" / "Set14")
VID4 = DATA / "video" / "Vid4"
VID4_CLIPS = ("calendar", "city", "foliage", "walk")
ALGOS = {"ESPCN": "espcn", "FSRCNN": "fsrcnn", "FSRCNN-small": "fsrcnn", "LapSRN": "lapsrn"}


# --- the peer environment -------------------------------------------------------------


class Peer:
    """How to run ``opencv_peers.py`` in the peer environment, or why it cannot run."""

    def __init__(self, python: str | None, pythonpath: str | None, models: Path):
        self.models = models
        self.argv: list[str] = []
        self.env = dict(os.environ)
        self.info: dict = {}
        self.skip: str | None = None
        if python:
            self.argv = [python, str(PEER_SCRIPT)]
        elif pythonpath:
            self.argv = [sys.executable, str(PEER_SCRIPT)]
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (pythonpath, self.env.get("PYTHONPATH")) if p
            )
        else:
            self.skip = (
                "no peer environment: give --peer-python (a venv with "
                "opencv-contrib-python-headless, numpy, av) or --peer-pythonpath"
            )
            return
        if not models.is_dir():
            self.skip = f"no peer models: {models} does not exist (--peers-dir)"
            return
        try:
            self.info = self.call("info")
        except (OSError, RuntimeError) as e:
            self.skip = f"peer environment does not run: {e}"
            return
        if not self.info.get("dnn_superres"):
            self.skip = (
                f"the peer environment's cv2 ({self.info.get('opencv')}) has no "
                "dnn_superres (needs opencv-contrib-python-headless)"
            )

    def model(self, stem: str, scale: int) -> Path | None:
        path = self.models / f"{stem}_x{scale}.pb"
        return path if path.is_file() else None

    def missing(self, stem: str, scale: int) -> str:
        return f"no {stem}_x{scale}.pb in {self.models}"

    def usable(self, stems: list[str], scale: int, label: str) -> Iterator[tuple[str, Path]]:
        """``(stem, model file)`` for each of ``stems`` this peer can run at ``scale``; a
        missing file is printed as skipped (the line starts with ``label``), and with
        ``skip`` set there are none."""
        for stem in stems:
            model = None if self.skip else self.model(stem, scale)
            if model is None:
                if not self.skip:
                    print(f"{label}opencv {stem}: skipped, {self.missing(stem, scale)}")
                continue
            yield stem, model

    def call(self, *args: str) -> dict:
        """Run one subcommand; its JSON answer (RuntimeError with its stderr on failure)."""
        done = subprocess.run(
            [*self.argv, *args], check=False, capture_output=True, text=True, env=self.env
        )
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
            raise RuntimeError(f"{' '.join(args[:1])} exited {done.returncode}: {' | '.join(tail)}")
        return json.loads(done.stdout.strip().splitlines()[-1])


# --- quality ------------------------------------------------------------------------

LR_MODES = {
    "matlab": "vidsr's protocol: MATLAB-compatible antialiased bicubic LR",
    "opencv": "the peers' training degradation: cv2.resize INTER_CUBIC LR (no antialiasing)",
}


def protocol_pairs(
    folder: Path, scale: int, lr_mode: str
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, hr, lr)`` for every image of ``folder``: mod-cropped HR and its LR, made as
    :func:`vidsr.eval.evaluate.evaluate` makes it (``matlab``) or as the peers' training code
    made it (``opencv``: Saafke/FSRCNN_Tensorflow ``data_utils.py`` downscales with
    ``cv2.resize(..., INTER_CUBIC)``, which does not antialias)."""
    import cv2

    from vidsr.eval.evaluate import iter_hr_images
    from vidsr.eval.resize import bicubic_downscale, modcrop

    pairs = []
    for name, hr in iter_hr_images(folder):
        hr = modcrop(hr, scale)
        if lr_mode == "matlab":
            lr = bicubic_downscale(hr, scale)
        else:
            lr = cv2.resize(
                hr, (hr.shape[1] // scale, hr.shape[0] // scale), interpolation=cv2.INTER_CUBIC
            )
        pairs.append((name, hr, lr))
    return pairs


def score_peer(
    peer: Peer, stem: str, scale: int, sets: dict[str, list], threads: int, tmp: Path
) -> dict[str, dict[str, tuple[float, float]]]:
    """Set name -> {"upsample": (psnr, ssim), "net": (psnr, ssim)}, means over images."""
    from vidsr.eval.metrics import luma, psnr, rgb_to_y, shave, ssim

    arrays: dict[str, np.ndarray] = {}
    for set_name, pairs in sets.items():
        for i, (_, _, lr) in enumerate(pairs):
            arrays[f"lr/{set_name}.{i}"] = lr
            # The peers were trained on full-range Y = 0.299 R + 0.587 G + 0.114 B, which is
            # (studio Y - 16) / 219 exactly; grey images are their own Y.
            y = lr / 255.0 if lr.ndim == 2 else (rgb_to_y(lr, round_to_code=False) - 16.0) / 219.0
            arrays[f"y/{set_name}.{i}"] = y.astype(np.float32)
    inp, out = tmp / "lr.npz", tmp / "sr.npz"
    np.savez(inp, **arrays)
    peer.call(
        "images",
        str(peer.model(stem, scale)),
        ALGOS[stem],
        str(scale),
        str(inp),
        str(out),
        "--threads",
        str(threads),
    )
    result: dict[str, dict] = {}
    with np.load(out) as sr:
        for set_name, pairs in sets.items():
            rows: dict[str, list] = {"upsample": [], "net": []}
            for i, (_, hr, lr) in enumerate(pairs):
                y_hr = shave(luma(hr), scale)
                up = sr[f"up/{set_name}.{i}"]
                y_up = up.astype(np.float64) if up.ndim == 2 else rgb_to_y(up)
                net = np.clip(sr[f"net/{set_name}.{i}"].astype(np.float64), 0.0, 1.0)
                y_net = np.round(net * 255.0) if lr.ndim == 2 else np.round(16.0 + 219.0 * net)
                for kind, y_sr in (("upsample", y_up), ("net", y_net)):
                    y_sr = shave(y_sr, scale)
                    rows[kind].append((psnr(y_sr, y_hr), ssim(y_sr, y_hr)))
            result[set_name] = {k: tuple(np.mean(v, axis=0)) for k, v in rows.items()}
    return result


def score_vidsr(
    name: str, scale: int, sets: dict[str, list], lr_mode: str
) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(set -> model (psnr, ssim), set -> bicubic (psnr, ssim)), means over images. With
    vidsr's protocol this is :func:`vidsr.eval.evaluate.evaluate` itself; with the OpenCV LR,
    its per-image steps (:func:`vidsr.eval.evaluate.upscale_y`, :mod:`vidsr.eval.metrics`)."""
    import torch

    from vidsr.engine.upscaler import load_model
    from vidsr.eval.evaluate import evaluate, upscale_y
    from vidsr.eval.metrics import luma, psnr, shave, ssim

    model = load_model(name, scale)
    cpu = torch.device("cpu")
    ours, bicubic = {}, {}
    if lr_mode == "matlab":
        for set_name in sets:
            report = evaluate(model, [next(f for f in SETS if f.name == set_name)], device="cpu")
            ours[set_name] = (report.psnr, report.ssim)
            bicubic[set_name] = (report.bicubic_psnr, report.bicubic_ssim)
        return ours, bicubic
    base = load_model("bicubic", scale)
    for set_name, pairs in sets.items():
        mine, bic = [], []
        for _, hr, lr in pairs:
            y_hr = shave(luma(hr), scale)
            for net, acc in ((model, mine), (base, bic)):
                y_sr = shave(upscale_y(net, lr, cpu), scale)
                acc.append((psnr(y_sr, y_hr), ssim(y_sr, y_hr)))
        ours[set_name] = tuple(np.mean(mine, axis=0))
        bicubic[set_name] = tuple(np.mean(bic, axis=0))
    return ours, bicubic


def run_quality(args: argparse.Namespace, peer: Peer, tmp: Path) -> dict:
    from vidsr.engine.upscaler import available_scales
    from vidsr.models.registry import REGISTRY

    set_names = [f.name for f in SETS if f.is_dir()]
    if not set_names:
        print(f"quality skipped: no Set5/Set14 under {DATA / 'images'}")
        return {}
    results: dict = {}
    head = f"{'scale':<6}{'model':<34}" + "".join(
        f"{s + ' PSNR':>12}{'SSIM':>8}" for s in set_names
    )

    def line(scale: int, label: str, figures: dict[str, tuple]) -> None:
        cells = "".join(f"{figures[s][0]:12.2f}{figures[s][1]:8.4f}" for s in set_names)
        print(f"x{scale:<5}{label:<34}{cells}")

    for lr_mode in args.lr:
        print(f"\n== quality, LR = {LR_MODES[lr_mode]}")
        print(
            f"Y-PSNR (dB) / SSIM on {' and '.join(set_names)}: Y of BT.601 studio rgb2ycbcr, "
            "border = scale, mean over images"
        )
        print(head)
        print("-" * len(head))
        results[lr_mode] = {}
        for scale in args.scales:
            sets = {f.name: protocol_pairs(f, scale, lr_mode) for f in SETS if f.is_dir()}
            rows: dict[str, dict[str, tuple]] = {}
            bicubic: dict[str, tuple] = {}
            for name in args.models:
                entry = REGISTRY.get(name)
                if entry is None or scale not in available_scales(entry):
                    continue
                rows[f"vidsr {name}"], bicubic = score_vidsr(name, scale, sets, lr_mode)
            if not bicubic:
                bicubic = score_vidsr("bicubic", scale, sets, lr_mode)[1]
            line(scale, "bicubic (vidsr, reference)", bicubic)
            for label, figures in rows.items():
                line(scale, label, figures)
            for stem, _ in peer.usable(args.peers, scale, f"x{scale:<5}"):
                try:
                    scores = score_peer(peer, stem, scale, sets, args.threads, tmp)
                except RuntimeError as e:
                    print(f"x{scale:<5}opencv {stem}: failed: {e}")
                    continue
                for kind, text in (("upsample", "upsample()"), ("net", "net on Y")):
                    label = f"opencv {stem} {text}"
                    rows[label] = {s: scores[s][kind] for s in set_names}
                    line(scale, label, rows[label])
            rows["bicubic"] = bicubic
            results[lr_mode][f"x{scale}"] = {
                k: {s: list(v) for s, v in f.items()} for k, f in rows.items()
            }
            ours = [k for k in rows if k.startswith("vidsr ")]
            theirs = [k for k in rows if k.startswith("opencv ") and k.endswith("upsample()")]
            for mine in ours:
                for other in theirs:
                    deltas = ", ".join(
                        f"{s} {rows[mine][s][0] - rows[other][s][0]:+.2f} dB" for s in set_names
                    )
                    print(f"{'':6}{mine} - {other[: -len(' upsample()')]}: {deltas}")
            print("-" * len(head))
    print(
        "upsample(): the peer as a user calls it (BGR in, BGR out); net on Y: the same graph "
        "on the unrounded Y, output rounded once, as vidsr's luma models are scored"
    )
    if peer.skip:
        print(f"peer rows skipped: {peer.skip}")
    return results


# --- speed --------------------------------------------------------------------------


def make_vid4_clip(path: Path, frames: int, size: tuple[int, int], rate: int = 25) -> str:
    """The speed test's input: Vid4's clips centre-cropped to ``size`` (no resampling),
    concatenated and cycled to ``frames``, libx264 crf 18 veryfast. Falls back to FFmpeg's
    ``testsrc2`` when Vid4 is absent. Returns a description."""
    w, h = size
    sources = [VID4 / f"{c}.mkv" for c in VID4_CLIPS if (VID4 / f"{c}.mkv").is_file()]
    if not sources:
        render_clip(path, frames, size, rate)
        return f"FFmpeg testsrc2 {w}x{h}, {frames} frames (Vid4 not found under {VID4})"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        n = 0
        while n < frames:
            for src in sources:
                with av.open(str(src)) as inp:
                    for frame in inp.decode(video=0):
                        if n == frames:
                            break
                        rgb = frame.to_ndarray(format="rgb24")
                        top, left = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
                        if top < 0 or left < 0:
                            raise ValueError(f"{src.name} is smaller than {w}x{h}")
                        crop = av.VideoFrame.from_ndarray(
                            np.ascontiguousarray(rgb[top : top + h, left : left + w]),
                            format="rgb24",
                        )
                        crop.pts, crop.time_base = n, Fraction(1, rate)
                        out.mux(stream.encode(crop))
                        n += 1
        out.mux(stream.encode())
    names = "+".join(s.stem for s in sources)
    return (
        f"Vid4 {names} centre-cropped to {w}x{h} (no resampling), first {frames} frames "
        f"(cycled), libx264 crf 18 veryfast yuv420p {rate} fps"
    )


# Runs `vidsr upscale ARGS` in a fresh process, timing main() only: torch, PyAV and the CLI
# modules are imported first, as the peer side imports cv2 before its clock starts.
VIDSR_RUNNER = """\
import json, sys, time
import av, torch
import vidsr.cli, vidsr.pipeline.video
vidsr.cli.build_parser()
start = time.perf_counter()
rc = vidsr.cli.main(sys.argv[1:])
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - start}))
"""


def probe_output(path: Path) -> tuple[int, int, int, str]:
    """(frames, width, height, codec) of an output video, by decoding it."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sum(1 for _ in c.decode(v)), v.width, v.height, v.codec_context.name


def run_speed(args: argparse.Namespace, peer: Peer, tmp: Path) -> dict:
    scale, (w, h) = 2, args.size
    if args.input:
        src = args.input
        with av.open(str(src)) as c:
            v = c.streams.video[0]
            w, h = v.width, v.height
            frames = sum(1 for _ in c.decode(v))
        clip = f"{src} ({w}x{h}, {frames} frames)"
    else:
        src, frames = tmp / "clip_640x360.mp4", args.frames
        clip = make_vid4_clip(src, frames, (w, h))
    print(
        f"\n== speed: x{scale} {w}x{h} -> {w * scale}x{h * scale}, end to end, {args.threads} "
        f"threads, median of {args.repeats} runs (interleaved)"
    )
    print(f"input: {clip}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")

    runners: list[tuple[str, list[str], dict, Path]] = []
    for stem, model in peer.usable(args.speed_peers, scale, ""):
        for writer in args.writers:
            if writer == "pyav" and not peer.info.get("pyav_libx264"):
                print(
                    f"opencv {stem} -> PyAV libx264: skipped, the peer environment has no "
                    "PyAV with libx264 (pip install av there)"
                )
                continue
            out = tmp / f"opencv_{stem}_{writer}.mp4"
            argv = [
                *peer.argv,
                "video",
                str(model),
                ALGOS[stem],
                str(scale),
                str(src),
                str(out),
                "--writer",
                writer,
                "--threads",
                str(args.threads),
                "--crf",
                "23",
                "--preset",
                args.preset,
            ]
            label = f"opencv {stem} " + (
                "-> PyAV libx264" if writer == "pyav" else "-> VideoWriter mp4v"
            )
            runners.append((label, argv, peer.env, out))
    # (colour, precision): the default, colour off, and the default in fp32 (what vidsr ran
    # before bf16 convolutions on CPUs that have bf16).
    speed_models = [m.strip() for m in args.speed_model.split(",") if m.strip()]
    for model, colour, precision in (
        (m, c, p)
        for m in speed_models
        for c, p in (("off", "auto"), ("shot", "auto"), ("shot", "fp32"))
    ):
        out = tmp / f"vidsr_{model}_{colour}_{precision}.mp4"
        argv = [
            sys.executable,
            "-c",
            VIDSR_RUNNER,
            "upscale",
            str(src),
            "-o",
            str(out),
            "--model",
            model,
            "--scale",
            str(scale),
            "--device",
            "cpu",
            "--threads",
            str(args.threads),
            "--codec",
            "libx264",
            "--crf",
            "23",
            "--preset",
            args.preset,
            "--color",
            colour,
            "--precision",
            precision,
            "--overwrite",
        ]
        label = f"vidsr {model} --color {colour}" + (
            " --precision fp32" if precision == "fp32" else " (default)" if colour == "shot" else ""
        )
        runners.append((label, argv, dict(os.environ), out))

    times: dict[str, list[float]] = {r[0]: [] for r in runners}
    walls: dict[str, list[float]] = {r[0]: [] for r in runners}
    extra: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for _ in range(args.repeats):
        for label, argv, env, out in runners:
            if label in failed:
                continue
            start = time.perf_counter()
            done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            try:
                answer = json.loads(done.stdout.strip().splitlines()[-1])
                if done.returncode != 0 or answer.get("rc", 0) != 0:
                    raise ValueError(f"exit {done.returncode}")
            except (ValueError, IndexError) as e:
                failed[label] = f"{e}: {(done.stderr.strip().splitlines() or [''])[-1]}"
                continue
            times[label].append(answer["seconds"])
            walls[label].append(wall)
            extra[label] = answer
            got = probe_output(out)
            extra[label]["output"] = got
            if got[:3] != (frames, w * scale, h * scale):
                failed[label] = f"output is {got}, expected {frames} frames {w * scale}x{h * scale}"

    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
    head = f"{'runner':<40}{'fps':>7}{'s/run':>8}{'fps incl. start':>17}  output"
    print(head)
    print("-" * len(head))
    results: dict = {"input": clip, "frames": frames, "threads": args.threads, "runs": {}}
    for label, *_ in runners:
        if label in failed:
            print(f"{label:<40} failed: {failed[label]}")
            continue
        t, wall = statistics.median(times[label]), statistics.median(walls[label])
        codec = extra[label]["output"][3]
        print(f"{label:<40}{frames / t:7.2f}{t:8.2f}{frames / wall:17.2f}  {codec}")
        results["runs"][label] = {
            "fps": frames / t,
            "seconds": times[label],
            "process_seconds": walls[label],
        }
        if "stages" in extra[label]:
            results["runs"][label]["stages"] = extra[label]["stages"]
    print("-" * len(head))
    for label, run in results["runs"].items():
        if "stages" in run:
            s = run["stages"]
            total = sum(s.values())
            print(
                f"{label}: last run's loop time in read {s['read'] / total:.0%}, "
                f"upsample {s['upsample'] / total:.0%}, write {s['write'] / total:.0%}"
            )
    writers = {extra[k]["writer"] for k in results["runs"] if "writer" in extra.get(k, {})}
    for text in sorted(writers):
        print(f"opencv writer: {text}")
    print(f"vidsr writer: libx264 crf 23 preset {args.preset}, GOP 2 s (vidsr's own sink)")
    if peer.skip:
        print(f"peer rows skipped: {peer.skip}")
    peers = {k: v for k, v in results["runs"].items() if k.startswith("opencv") and "PyAV" in k}
    for label, run in results["runs"].items():
        if label.startswith("vidsr"):
            for peer_label, peer_run in peers.items():
                print(f"{label} / {peer_label}: {run['fps'] / peer_run['fps']:.2f}x")
    for model in speed_models:
        default = results["runs"].get(f"vidsr {model} --color shot (default)")
        for peer_label, peer_run in peers.items():
            if default:
                ratio = default["fps"] / peer_run["fps"]
                verdict = "met" if ratio >= 2 else "not met"
                print(
                    f"target: {model} (default settings) at >= 2x {peer_label}: "
                    f"{ratio:.2f}x, {verdict}"
                )
    return results


# --- network alone ------------------------------------------------------------------


def run_net(args: argparse.Namespace, peer: Peer) -> dict:
    """Per-frame time of the networks alone: the peers' ``upsample()`` on a one-channel
    plane; vidsr's shipped models on the whole frame and in the tiles the CPU pipeline
    cuts (``vidsr.pipeline.planning.CPU_CACHE_TILE`` px with the model's receptive-radius
    overlap)."""
    import torch

    from vidsr.engine.tiling import tiled_apply
    from vidsr.engine.upscaler import available_scales, load_model
    from vidsr.models.registry import REGISTRY
    from vidsr.pipeline.planning import CPU_CACHE_TILE

    w, h = args.size
    clock = {"wall": time.perf_counter, "cpu": time.process_time}[args.clock]
    torch.set_num_threads(args.threads)
    print(
        f"\n== network alone: one {w}x{h} frame, {args.threads} threads, median {args.clock} "
        "time of 7"
    )

    def median_of_7(fn) -> float:
        with torch.inference_mode():
            fn()  # warm-up
            times = []
            for _ in range(7):
                t0 = clock()
                fn()
                times.append(clock() - t0)
        return statistics.median(times)

    rows: list[tuple[str, float]] = []
    for scale in args.scales:
        for stem, model in peer.usable(args.peers, scale, f"x{scale} "):
            answer = peer.call(
                "net",
                str(model),
                ALGOS[stem],
                str(scale),
                "--size",
                f"{w}x{h}",
                "--repeats",
                "7",
                "--threads",
                str(args.threads),
                "--clock",
                args.clock,
            )
            rows.append((f"x{scale} opencv {stem} (Y)", answer["seconds"]))
        for name in args.models:
            entry = REGISTRY.get(name)
            if entry is None or scale not in available_scales(entry):
                continue
            net = load_model(name, scale)
            x = torch.rand(1, net.in_channels, h, w)
            what = "Y" if entry.colour == "luma" else "RGB"
            rows.append((f"x{scale} vidsr {name} ({what}, whole)", median_of_7(partial(net, x))))
            if max(w, h) > CPU_CACHE_TILE:
                t = median_of_7(
                    partial(tiled_apply, net, x, scale, CPU_CACHE_TILE, net.receptive_radius)
                )
                rows.append((f"x{scale} vidsr {name} ({what}, {CPU_CACHE_TILE} px tiles)", t))
    for label, t in rows:
        print(f"{label:<42}{t * 1000:9.1f} ms/frame{1 / t:8.1f} fps")
    if peer.skip:
        print(f"peer rows skipped: {peer.skip}")
    return {label: t for label, t in rows}


def main() -> int:
    from vidsr.engine.upscaler import model_listing

    shipped = [m["name"] for m in model_listing() if m["family"] != "baseline"]
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default="quality,speed", help="any of quality, speed, net")
    p.add_argument("--peer-python", default=None, help="python of an env with opencv-contrib")
    p.add_argument(
        "--peer-pythonpath",
        default=None,
        help="or: a folder with opencv-contrib-python-headless (pip --target), "
        "prepended to PYTHONPATH of this python",
    )
    p.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help="folder of the .pb files")
    p.add_argument(
        "--peers",
        default="ESPCN,FSRCNN,FSRCNN-small",
        help=f"peer models for quality and net ({', '.join(ALGOS)})",
    )
    p.add_argument(
        "--speed-peers", default="ESPCN,FSRCNN,FSRCNN-small", help="peer models for speed"
    )
    p.add_argument("--models", default=",".join(shipped), help="vidsr models (default: shipped)")
    p.add_argument(
        "--speed-model",
        default="fast",
        help="vidsr model(s) for the speed part, comma-separated, interleaved with the peers",
    )
    p.add_argument("--scales", default="2,3,4", help="scales for quality and net")
    p.add_argument(
        "--lr",
        default="matlab,opencv",
        help="quality LR degradations: matlab (vidsr's protocol), opencv (the peers')",
    )
    p.add_argument("--size", default="640x360", help="speed clip / net frame size, WxH")
    p.add_argument("--frames", type=int, default=100, help="frames of the speed clip")
    p.add_argument("--input", type=Path, default=None, help="speed input video instead of Vid4's")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--preset", default="veryfast", help="libx264 preset for both sides")
    p.add_argument("--writers", default="pyav", help="OpenCV loop writers: pyav, cv2 or both")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="for --parts net")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    parts = {s.strip() for s in args.parts.split(",")}
    args.scales = [int(s) for s in args.scales.split(",")]
    args.models = [s.strip() for s in args.models.split(",") if s.strip()]
    args.peers = [s.strip() for s in args.peers.split(",") if s.strip()]
    args.speed_peers = [s.strip() for s in args.speed_peers.split(",") if s.strip()]
    args.writers = [s.strip() for s in args.writers.split(",") if s.strip()]
    args.size = tuple(int(v) for v in args.size.split("x"))
    args.lr = [s.strip() for s in args.lr.split(",") if s.strip()]
    for mode in args.lr:
        if mode not in LR_MODES:
            p.error(f"unknown --lr {mode!r}; known: {', '.join(LR_MODES)}")
    for name in args.peers + args.speed_peers:
        if name not in ALGOS:
            p.error(f"unknown peer {name!r}; known: {', '.join(ALGOS)}")

    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    print(banner())
    peer = Peer(args.peer_python, args.peer_pythonpath, args.peers_dir)
    if peer.skip:
        print(f"OpenCV peers: skipped ({peer.skip})")
    else:
        i = peer.info
        print(
            f"OpenCV peers: opencv-contrib {i['opencv']} (python {i['python']}, numpy "
            f"{i['numpy']}, "
            f"PyAV {i.get('pyav')} FFmpeg {i.get('ffmpeg')}), models from {args.peers_dir}"
        )
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="vidsr-vs-opencv-") as tmp:
        if "quality" in parts:
            results["quality"] = run_quality(args, peer, Path(tmp))
        if "speed" in parts:
            results["speed"] = run_speed(args, peer, Path(tmp))
        if "net" in parts:
            results["net"] = run_net(args, peer)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
