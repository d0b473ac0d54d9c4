"""Per-frame CPU time of vidsr's networks against OpenCV dnn_superres peers (ESPCN, FSRCNN).

Both sides run the network on the Y plane of one LR frame (the part the models differ
in; colour conversion and chroma upscaling cost the same for both), on the CPU, with the
same thread count. vidsr models run their registry architecture (speed does not depend
on the weights, so unshipped models are timed with random init).

Needs ``opencv-contrib-python-headless`` for the peers' DepthToSpace layer; install it
beside the project (e.g. ``pip install --target /tmp/cvc opencv-contrib-python-headless``
and ``PYTHONPATH=/tmp/cvc``) since it clashes with ``opencv-python``.

Usage: python benchmarks/models_vs_opencv.py [--size 640x360] [--scale 2] [--threads 2]
       [--repeats 7] [--models fast,srcnn,quality] [--clock wall|cpu]
       [--channels-last]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.models.registry import REGISTRY  # noqa: E402

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = CLOCKS["wall"]


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    """Median of ``repeats`` calls on the chosen clock (``cpu``: process CPU time, which a
    busy shared machine disturbs far less than wall time; use it with ``--threads 1``)."""
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return sorted(times)[len(times) // 2], times


PEERS = Path(__file__).resolve().parents[2] / "shared" / "data" / "peers" / "opencv_dnn_superres"


def time_vidsr(
    name: str, y: np.ndarray, scale: int, repeats: int, channels_last: bool = False
) -> float:
    entry = REGISTRY[name]
    net = entry.build(scale).eval()
    c = 1 if entry.colour == "luma" else 3
    x = torch.from_numpy(y).float().div(255)[None, None].expand(1, c, *y.shape).contiguous()
    if channels_last:  # oneDNN's fast path for thin convs on the CPU
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(x)  # warm-up
        t, _ = median_time(lambda: net(x), repeats)
    return t


def time_opencv(cv2, algo: str, file: Path, y: np.ndarray, scale: int, repeats: int) -> float:
    """dnn_superres runs the net on Y and resizes chroma with cv2.resize; its API only
    takes BGR frames, so the colour work (timed alone, the same ops) is subtracted."""
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(file))
    sr.setModel(algo, scale)
    bgr = np.ascontiguousarray(np.repeat(y[:, :, None], 3, axis=2))
    h, w = y.shape
    out = sr.upsample(bgr)
    assert out.shape[:2] == (h * scale, w * scale), out.shape

    def colour_only() -> object:
        ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32)
        planes = cv2.split(ycc)
        up = [cv2.resize(c, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC) for c in planes]
        return cv2.cvtColor(cv2.merge(up).astype(np.uint8), cv2.COLOR_YCrCb2BGR)

    full, _ = median_time(lambda: sr.upsample(bgr), repeats)
    colour, _ = median_time(colour_only, repeats)
    return max(full - colour, 1e-6)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360", help="LR frame WxH")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--models", default="fast,srcnn,quality")
    p.add_argument("--channels-last", action="store_true",
                   help="also time vidsr models in channels_last memory format")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall time, or process CPU time (steadier on a shared machine)")
    args = p.parse_args()
    global CLOCK
    CLOCK = CLOCKS[args.clock]

    w, h = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (h, w)).astype(np.uint8)
    print(banner())
    print(f"LR {w}x{h} Y plane -> x{args.scale}, {args.threads} threads, "
          f"median {args.clock} time of {args.repeats}")

    rows: list[tuple[str, float]] = []
    try:
        import cv2

        cv2.setNumThreads(args.threads)
        if not hasattr(cv2, "dnn_superres"):
            raise ImportError("cv2 has no dnn_superres (needs opencv-contrib-python-headless)")
        print(f"OpenCV {cv2.__version__}")
        for algo, stem in (("espcn", "ESPCN"), ("fsrcnn", "FSRCNN"), ("fsrcnn", "FSRCNN-small")):
            file = PEERS / f"{stem}_x{args.scale}.pb"
            if file.is_file():
                t = time_opencv(cv2, algo, file, y, args.scale, args.repeats)
                rows.append((f"opencv {stem}", t))
    except ImportError as e:
        print(f"peers skipped: {e}")
    for name in args.models.split(","):
        rows.append((f"vidsr {name}", time_vidsr(name.strip(), y, args.scale, args.repeats)))
        if args.channels_last:
            t = time_vidsr(name.strip(), y, args.scale, args.repeats, channels_last=True)
            rows.append((f"vidsr {name} (CL)", t))

    ref = dict(rows).get("opencv ESPCN")
    for label, t in rows:
        rel = f"{t / ref:6.2f}x ESPCN" if ref else ""
        print(f"{label:<22} {t * 1000:9.1f} ms/frame  {1 / t:7.1f} fps  {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
