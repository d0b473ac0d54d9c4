"""Peak host and device memory of `vidsr upscale` at 720p and 4K input, and on a video
10x longer (memory must not grow with the length).

Each run is a fresh subprocess, so the peak resident set (``ru_maxrss``) and the CUDA
allocator's peak (``torch.cuda.max_memory_allocated``) belong to that run alone.

Usage: python benchmarks/memory.py [--sizes 1280x720,3840x2160] [--models bicubic,fast]
       [--frames 8] [--device auto] [--scale 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner, render_clip  # noqa: E402

RUN = """
import json, resource, sys, torch
from vidsr.config import EncodeConfig, RunConfig
from vidsr.pipeline.video import upscale_video
device = sys.argv[4]
s = upscale_video(sys.argv[1], sys.argv[2], RunConfig(model=sys.argv[3], scale=int(sys.argv[5]),
                  device=device, overwrite=True, encode=EncodeConfig(crf=23, preset="veryfast")))
cuda = torch.cuda.is_available() and device != "cpu"
print(json.dumps({"frames": s.frames, "fps": s.fps,
                  "host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "device_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}))
"""


def measure(src: Path, model: str, device: str, scale: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            str(src),
            str(src.with_suffix(".out.mp4")),
            model,
            device,
            str(scale),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"run failed: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", default="1280x720,3840x2160")
    p.add_argument("--models", default="bicubic,fast")
    p.add_argument(
        "--frames", type=int, default=8, help="frames of the short clip (the long one has 10x)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    print(banner())
    print(
        f"x{args.scale}, libx264 crf 23 veryfast, colour shot (the default), device {args.device}; "
        f"short clip {args.frames} frames, long clip {args.frames * 10}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            short = render_clip(Path(tmp) / f"s{w}.mp4", args.frames, (w, h))
            long = render_clip(Path(tmp) / f"l{w}.mp4", args.frames * 10, (w, h))
            for model in args.models.split(","):
                a, b = (
                    measure(short, model, args.device, args.scale),
                    measure(long, model, args.device, args.scale),
                )
                row = {
                    "input": size,
                    "model": model,
                    "host_mb_short": a["host_mb"],
                    "host_mb_long": b["host_mb"],
                    "device_mb_short": a["device_mb"],
                    "device_mb_long": b["device_mb"],
                    "fps_long": b["fps"],
                }
                rows.append(row)
                dev = (
                    f"  device {a['device_mb']:7.0f} -> {b['device_mb']:7.0f} MB"
                    if a["device_mb"] is not None
                    else "  device -"
                )
                print(
                    f"{size:>10} {model:>10}: host {a['host_mb']:7.0f} -> {b['host_mb']:7.0f} MB "
                    f"({b['host_mb'] / a['host_mb'] - 1:+.1%} for 10x the frames){dev}  "
                    f"({b['fps']:.1f} fps)"
                )
                long.with_suffix(".out.mp4").unlink(missing_ok=True)
            short.unlink()
            long.unlink()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
