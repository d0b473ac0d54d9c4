"""Live-stream benchmark: output fps and capture-to-output latency of ``vidsr stream``.

The source is an FFmpeg ``testsrc2`` lavfi graph paced at 30 fps, as a camera would
deliver it; frames the model cannot keep up with are dropped (counted), never queued.
Latency runs from the moment a frame is captured (released by the pacer) to the moment
its upscaled frame is handed to the outputs (recording queue, HTTP hub, window). The
model is warmed up before capture starts. No output is opened (no encode/JPEG cost).

Models: the default model (``vidsr.engine.upscaler.default_model``), and the fast model. When the
fast model's weights are not shipped yet, its architecture runs with untrained weights:
its speed does not depend on the weight values, so the timing still holds (labelled).

    python benchmarks/stream_latency.py [--seconds 8] [--colour shot] [--threads N]
        [--sizes WxH,...]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
from collections.abc import Iterator

import torch
from common import banner

import vidsr.pipeline.live.stream as stream_module
import vidsr.pipeline.planning as planning_module
from vidsr.config import RunConfig
from vidsr.engine.upscaler import available_scales, default_model, wrap_entry
from vidsr.models.contract import SRModel
from vidsr.models.registry import REGISTRY
from vidsr.pipeline.live.stream import StreamConfig, run_stream

CPU_SIZES = ((320, 240), (640, 480))
GPU_SIZES = ((1280, 720),)


@contextlib.contextmanager
def untrained_fast_model() -> Iterator[str]:
    """Make ``fast`` loadable without weights (random init), for timing only."""
    entry = REGISTRY["fast"]
    saved = planning_module.load_model, stream_module.check_model_choice

    def load(name: str, scale: int, **_options: object) -> SRModel:
        torch.manual_seed(0)
        return wrap_entry(entry, entry.build(scale), scale, name="fast (untrained)")

    planning_module.load_model = load
    stream_module.check_model_choice = lambda name, scale: None
    try:
        yield "fast (untrained weights: timing only)"
    finally:
        planning_module.load_model, stream_module.check_model_choice = saved


def measure(
    model: str,
    size: tuple[int, int],
    seconds: float,
    colour: str,
    device: str,
    precision: str = "auto",
) -> dict:
    width, height = size
    run = RunConfig(model=model, scale=2, device=device, colour=colour, precision=precision)
    config = StreamConfig(
        source=f"lavfi:testsrc2=size={width}x{height}:rate=30", run=run, duration=seconds
    )
    s = run_stream(config)
    return {
        "fps": s.stats.fps,
        "p50": s.stats.latency_p50_ms,
        "p95": s.stats.latency_p95_ms,
        "frames": s.stats.frames,
        "dropped": s.stats.dropped,
        "captured": s.captured,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="stream length per case (default 8)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per case; medians are printed")
    parser.add_argument("--colour", default="shot", choices=("shot", "frame", "off"))
    parser.add_argument(
        "--sizes",
        default=None,
        help="input sizes, e.g. 320x240,1280x720 (default: 320x240 and 640x480, plus "
        "1280x720 on CUDA)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's). On a machine shared with other "
        "busy processes, 1 avoids OpenMP barriers waiting on preempted threads",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="models to run, e.g. fast,temporal (default: the default model and fast)",
    )
    parser.add_argument(
        "--precisions",
        default="auto",
        help="--precision values to run each model with, e.g. auto,fp32 (default auto)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(banner())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = CPU_SIZES + (GPU_SIZES if device == "cuda" else ())
    if args.sizes:
        sizes = tuple(tuple(int(v) for v in s.split("x")) for s in args.sizes.split(","))
    print(
        f"device: {device}, source: lavfi testsrc2 paced at 30 fps, scale x2, batch 1, "
        f"colour matching: {args.colour}, {args.seconds:g} s per run, {args.repeats} run(s) per "
        "case\n"
    )

    cases: list[tuple[str, contextlib.AbstractContextManager]] = [
        (default_model(2), contextlib.nullcontext())
    ]
    if 2 in available_scales(REGISTRY["fast"]):
        if cases[0][0] != "fast":
            cases.append(("fast", contextlib.nullcontext()))
    else:
        print(
            "note: no fast weights shipped yet; the default model is "
            f"{default_model(2)!r}, and 'fast' runs with untrained weights (same speed)\n"
        )
        cases.append(("fast", untrained_fast_model()))
    if args.models:
        cases = [(name, contextlib.nullcontext()) for name in args.models.split(",")]

    print(
        f"{'model':40s} {'input':>9s} -> {'output':9s} {'fps':>6s} {'p50 ms':>7s} "
        f"{'p95 ms':>7s} {'dropped':>9s}"
    )
    for model, context in cases:
        with context as label:
            name = label or model
            for size, precision in itertools.product(sizes, args.precisions.split(",")):
                runs = [
                    measure(model, size, args.seconds, args.colour, device, precision)
                    for _ in range(args.repeats)
                ]
                med = {k: statistics.median(r[k] for r in runs) for k in ("fps", "p50", "p95")}
                dropped = f"{sum(r['dropped'] for r in runs)}/{sum(r['captured'] for r in runs)}"
                w, h = size
                shown = f"{name} --precision {precision}"
                print(
                    f"{shown:40s} {w:>4d}x{h:<4d} -> {2 * w}x{2 * h:<4d} {med['fps']:6.1f} "
                    f"{med['p50']:7.1f} {med['p95']:7.1f} {dropped:>9s}",
                    flush=True,
                )
    print(
        "\ntargets (issue 4): >= 24 fps and p95 < 100 ms at 320x240 x2 on 2 CPU cores; 1280x720 "
        "x2 on a GPU"
    )


if __name__ == "__main__":
    main()
