"""OpenCV dnn_superres side of ``benchmarks/models_vs_opencv.py``; runs in the peer environment.

The peers need ``opencv-contrib-python-headless`` (its ``dnn_superres`` module registers the
DepthToSpace layer the ESPCN/FSRCNN graphs use), whose ``cv2`` clashes with the project's
``opencv-python``. So this script imports nothing from vidsr (nor torch) and is run by
``models_vs_opencv.py`` under a separate interpreter, e.g. a venv made with::

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install opencv-contrib-python-headless numpy av

Each subcommand prints one JSON object on stdout:

    info                                   versions; whether dnn_superres and libx264 work
    images MODEL ALGO SCALE IN.npz OUT.npz upscale LR images two ways (see ``images``)
    video MODEL ALGO SCALE INPUT OUTPUT [--writer pyav|cv2] [--threads N]
                                           capture -> upsample -> write loop, timed
    net MODEL ALGO SCALE [--size WxH] [--repeats N] [--threads N] [--clock wall|cpu]
                                           the network alone on one Y plane, timed

How ``DnnSuperResImpl.upsample`` feeds ESPCN/FSRCNN (opencv_contrib
``modules/dnn_superres/src/dnn_superres.cpp``, checked against this wheel's output): a
uint8 BGR frame goes through ``cvtColor(BGR2YCrCb)`` (full-range BT.601, rounded to uint8),
Y / 255 is the network input, its output is merged with Cr and Cb enlarged by
``cv::resize`` with its default ``INTER_LINEAR`` (bilinear, not bicubic), converted back to
uint8 and to BGR. A one-channel image skips the colour steps: ``upsample(Y)`` is the
network on Y / 255, times 255, rounded to uint8.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _load_cv2():
    import cv2

    if not hasattr(cv2, "dnn_superres"):
        raise SystemExit(
            f"cv2 {cv2.__version__} from {cv2.__file__} has no dnn_superres "
            "(needs opencv-contrib-python-headless)"
        )
    return cv2


def _superres(cv2, model: Path, algo: str, scale: int):
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(model))
    sr.setModel(algo, scale)
    return sr


def cmd_info(args: argparse.Namespace) -> dict:
    info: dict = {"python": sys.version.split()[0], "numpy": np.__version__}
    try:
        import cv2

        info["opencv"] = cv2.__version__
        info["dnn_superres"] = hasattr(cv2, "dnn_superres")
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError as e:
        info["opencv"] = None
        info["error"] = str(e)
    try:
        import av

        info["pyav"] = av.__version__
        info["ffmpeg"] = str(av.ffmpeg_version_info)
        info["pyav_libx264"] = "libx264" in av.codecs_available
    except ImportError:
        info["pyav"] = None
    return info


def cmd_images(args: argparse.Namespace) -> dict:
    """For every array ``lr/<key>`` in IN.npz (uint8 RGB ``(h, w, 3)`` or grey ``(h, w)``):

    * ``up/<key>``: ``upsample()`` of it as a user calls it (RGB sent as BGR), uint8, in
      the input's layout (RGB back in RGB order);
    * ``net/<key>``: the bare network (same graph, ``cv2.dnn``) on ``y/<key>``, a float32
      plane in [0, 1] chosen by the caller, float32 output unrounded.
    """
    cv2 = _load_cv2()
    cv2.setNumThreads(args.threads)
    sr = _superres(cv2, args.model, args.algo, args.scale)
    net = cv2.dnn.readNet(str(args.model))  # after dnn_superres registered its layers
    out: dict[str, np.ndarray] = {}
    with np.load(args.inp) as data:
        keys = [k[3:] for k in data.files if k.startswith("lr/")]
        for key in keys:
            lr = data[f"lr/{key}"]
            if lr.ndim == 2:
                up = sr.upsample(np.ascontiguousarray(lr))
            else:
                up = sr.upsample(np.ascontiguousarray(lr[:, :, ::-1]))[:, :, ::-1]
            out[f"up/{key}"] = np.ascontiguousarray(up)
            net.setInput(cv2.dnn.blobFromImage(np.ascontiguousarray(data[f"y/{key}"], np.float32)))
            out[f"net/{key}"] = net.forward()[0, 0].astype(np.float32)
    np.savez(args.out, **out)
    return {"images": len(keys), "opencv": cv2.__version__}


class PyAVWriter:
    """libx264 through PyAV with vidsr's settings (crf, preset, GOP of 2 s, codec threads
    AUTO), fed BGR frames; PyAV converts them to yuv420p (swscale) before encoding."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, crf: int, preset: str):
        import av

        self.rate = Fraction(fps).limit_denominator(1001)
        self.out = av.open(str(path), "w")
        options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(2 * fps)))}
        self.stream = self.out.add_stream("libx264", rate=self.rate, options=options)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = 1 / self.rate
        self.stream.codec_context.thread_type = "AUTO"
        self.n = 0
        self.description = (
            f"PyAV {av.__version__} libx264 crf {crf} preset {preset} g {options['g']}"
        )

    def write(self, bgr: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        frame.pts, frame.time_base = self.n, 1 / self.rate
        self.out.mux(self.stream.encode(frame))
        self.n += 1

    def close(self) -> None:
        self.out.mux(self.stream.encode())  # flush the encoder's delayed frames
        self.out.close()


class Cv2Writer:
    """``cv2.VideoWriter`` as a user would open it. The opencv-python(-contrib) wheels'
    FFmpeg has no libx264 ('avc1' fails), so this is MPEG-4 Part 2 ('mp4v')."""

    def __init__(self, cv2, path: Path, size: tuple[int, int], fps: float):
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise SystemExit(f"cv2.VideoWriter cannot open {path} with mp4v")
        self.description = (
            f"cv2.VideoWriter mp4v (MPEG-4 Part 2, OpenCV {cv2.__version__} defaults)"
        )

    def write(self, bgr: np.ndarray) -> None:
        self.writer.write(bgr)

    def close(self) -> None:
        self.writer.release()


def cmd_video(args: argparse.Namespace) -> dict:
    """The loop OpenCV's dnn_superres users run: read a frame, upsample it, write it, one
    frame at a time on one Python thread. The clock starts before the model is read and
    stops when the output is closed (imports excluded, as on the vidsr side)."""
    cv2 = _load_cv2()
    cv2.setNumThreads(args.threads)
    start = time.perf_counter()
    sr = _superres(cv2, args.model, args.algo, args.scale)
    cap = cv2.VideoCapture(str(args.input))
    if not cap.isOpened():
        raise SystemExit(f"cv2.VideoCapture cannot open {args.input}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    size = (
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) * args.scale,
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) * args.scale,
    )
    if args.writer == "cv2":
        writer = Cv2Writer(cv2, args.output, size, fps)
    else:
        writer = PyAVWriter(args.output, size, fps, args.crf, args.preset)
    stages = {"read": 0.0, "upsample": 0.0, "write": 0.0}
    frames = 0
    try:
        while True:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            t1 = time.perf_counter()
            stages["read"] += t1 - t0
            if not ok:
                break
            up = sr.upsample(frame)
            t2 = time.perf_counter()
            writer.write(up)
            stages["write"] += time.perf_counter() - t2
            stages["upsample"] += t2 - t1
            frames += 1
    finally:
        cap.release()
        t3 = time.perf_counter()
        writer.close()
        stages["write"] += time.perf_counter() - t3
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "size": list(size),
        "stages": stages,
        "writer": writer.description,
        "opencv": cv2.__version__,
    }


def cmd_net(args: argparse.Namespace) -> dict:
    """Median time of ``upsample()`` on a float32 one-channel plane: the network, plus a
    scale by 1/255 in and a uint8 conversion out (no colour work)."""
    cv2 = _load_cv2()
    cv2.setNumThreads(args.threads)
    clock = CLOCKS[args.clock]
    sr = _superres(cv2, args.model, args.algo, args.scale)
    w, h = (int(v) for v in args.size.split("x"))
    y = np.random.default_rng(0).integers(16, 236, (h, w)).astype(np.float32)
    out = sr.upsample(y)  # warm-up
    if out.shape != (h * args.scale, w * args.scale):
        raise SystemExit(f"unexpected output shape {out.shape}")
    times = []
    for _ in range(args.repeats):
        t0 = clock()
        sr.upsample(y)
        times.append(clock() - t0)
    return {"seconds": sorted(times)[len(times) // 2], "times": times}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info")

    def model_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("model", type=Path, help=".pb file")
        q.add_argument("algo", choices=("espcn", "fsrcnn", "lapsrn"))
        q.add_argument("scale", type=int)
        q.add_argument("--threads", type=int, default=2, help="cv2.setNumThreads")

    q = sub.add_parser("images")
    model_args(q)
    q.add_argument("inp", type=Path)
    q.add_argument("out", type=Path)
    q = sub.add_parser("video")
    model_args(q)
    q.add_argument("input", type=Path)
    q.add_argument("output", type=Path)
    q.add_argument("--writer", choices=("pyav", "cv2"), default="pyav")
    q.add_argument("--crf", type=int, default=23)
    q.add_argument("--preset", default="veryfast")
    q = sub.add_parser("net")
    model_args(q)
    q.add_argument("--size", default="640x360")
    q.add_argument("--repeats", type=int, default=7)
    q.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = p.parse_args()
    commands = {"info": cmd_info, "images": cmd_images, "video": cmd_video, "net": cmd_net}
    print(json.dumps(commands[args.command](args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
