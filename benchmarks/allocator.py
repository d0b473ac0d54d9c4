"""What the heap setting (vidsr.allocator.keep_freed_memory) does to `vidsr upscale` speed.

Each run is a fresh process timing the CLI's ``main`` (imports excluded), once with the
C library's defaults (``VIDSR_ALLOCATOR=system``) and once as shipped (freed blocks kept
for the next tile), interleaved, for each ``--models``; prints the machine, the versions,
the median fps of ``--repeats`` runs, the ratio, the peak resident memory (max RSS) and the
process's minor page faults. Input: Vid4's four clips centre-cropped to 640x360 (no
resampling), cycled to ``--frames``, libx264 crf 18 veryfast (as
benchmarks/models_vs_opencv.py makes it; FFmpeg's testsrc2 where Vid4 is absent), upscaled
x2 to libx264 at vidsr's defaults.

Usage: python benchmarks/allocator.py [--models fast,fast-ecb] [--frames 60] [--repeats 5]
       [--scale 2] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import banner
from models_vs_opencv import make_vid4_clip

RUNNER = """\
import json, resource, sys, time
import av, torch
import vidsr.cli, vidsr.pipeline.video
vidsr.cli.build_parser()
start = time.perf_counter()
rc = vidsr.cli.main(sys.argv[1:])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rc": rc, "seconds": seconds, "maxrss_mb": usage.ru_maxrss / 1024,
                  "minflt": usage.ru_minflt}))
"""

SETTINGS = {"system": "glibc defaults", "kept": "freed memory kept (shipped)"}


def run_once(argv: list[str], setting: str) -> dict:
    env = dict(os.environ)
    env.pop("VIDSR_ALLOCATOR", None)
    if setting == "system":
        env["VIDSR_ALLOCATOR"] = "system"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], env=env, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines or json.loads(lines[-1])["rc"] != 0:
        raise SystemExit(f"vidsr {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="fast,fast-ecb")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="vidsr --threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(banner())
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results: dict[str, dict[str, list[dict]]] = {m: {s: [] for s in SETTINGS} for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        print(f"input: {make_vid4_clip(clip, args.frames, (640, 360))}")
        print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")
        for _ in range(args.repeats):
            for model in models:
                for setting in SETTINGS:
                    argv = ["upscale", str(clip), "-o", str(Path(tmp) / "out.mp4"), "--overwrite"]
                    argv += ["--model", model, "--scale", str(args.scale)]
                    if args.threads is not None:
                        argv += ["--threads", str(args.threads)]
                    results[model][setting].append(run_once(argv, setting))
    print(
        f"\nx{args.scale} 640x360 -> {640 * args.scale}x{360 * args.scale}, {args.frames} frames, "
        f"median of {args.repeats} runs (interleaved); fps from main()'s wall time"
    )
    print(f"{'model':<10} {'heap':<28} {'fps':>7} {'ratio':>6} {'max RSS MB':>11} {'faults':>9}")
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for model in models:
        base = None
        for setting, label in SETTINGS.items():
            runs = results[model][setting]
            fps = statistics.median(args.frames / r["seconds"] for r in runs)
            rss = statistics.median(r["maxrss_mb"] for r in runs)
            faults = statistics.median(r["minflt"] for r in runs)
            base = base or fps
            summary.setdefault(model, {})[setting] = {
                "fps": fps,
                "maxrss_mb": rss,
                "minflt": faults,
            }
            print(f"{model:<10} {label:<28} {fps:7.2f} {fps / base:6.2f} {rss:11.0f} {faults:9.0f}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
