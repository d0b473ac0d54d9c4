"""Time per frame of the recurrent ``temporal`` model against the ``quality`` model, through
the compute stage a run uses (:func:`vidsr.pipeline.planning.build_compute`: tiles, batches,
CPU workers; the stateful path steps frames in order and shares each frame's tiles among
the workers), with decoding and encoding left out (frames from memory, a sink that drops
them). Timing needs no training: the temporal net has random weights, written as a
``vidsr train --export``-style file (``--weights-out`` keeps it, e.g. for
``benchmarks/memory.py --models PATH``).

Each model runs as the command line runs it on the CPU (``--threads`` model workers, one
torch thread each) and with one worker on ``--threads`` torch threads.

Usage: python benchmarks/temporal.py [--size 640x360] [--scale 4] [--frames 12]
       [--threads 2] [--device cpu] [--tiles 192,256] [--weights-out PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.allocator import keep_freed_memory  # noqa: E402
from vidsr.colour.convert import YuvFormat  # noqa: E402
from vidsr.config import RunConfig  # noqa: E402
from vidsr.engine.processor import PlaneFormats  # noqa: E402
from vidsr.media.planes import HostFrame  # noqa: E402
from vidsr.models.temporal import RecurrentSR  # noqa: E402
from vidsr.pipeline.planning import build_compute  # noqa: E402

FMT = YuvFormat(1, False, 8)


def write_random_weights(path: Path, scale: int) -> Path:
    """The registry's temporal net at ``scale``, randomly initialised, as an export file."""
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in RecurrentSR(scale).state_dict().items()}
    save_file(state, str(path), metadata={"arch": "temporal", "scale": str(scale)})
    return path


class _NullSink:
    frames = 0

    def open(self) -> None: ...
    def close(self) -> None: ...
    def mux_packet(self, stream_index: int, packet: object) -> None: ...

    def write_frame(self, planes: object, frame: HostFrame) -> None:
        self.frames += 1


def _frames(n: int, width: int, height: int) -> list[HostFrame]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0 : width + n]
    base = ((xx * 3 + yy * 2) % 256).astype(np.uint8)
    uv = np.full((height // 2, width // 2), 128, np.uint8)
    out = []
    for i in range(n):
        y = np.ascontiguousarray(base[:, i : i + width])
        y = np.clip(y + rng.integers(-8, 8, y.shape), 0, 255).astype(np.uint8)
        out.append(HostFrame(i, i, 1, (y, uv, uv), new_shot=i == 0))
    return out


def seconds_per_frame(
    model: str, args: argparse.Namespace, workers: int, threads: int, tile: int | None = None
) -> tuple[float, str]:
    """Median over two runs of the compute stage's wall time per frame (one warm-up call
    first), and a note of the plan (tile, batch, schedule)."""
    torch.set_num_threads(threads)
    w, h = (int(v) for v in args.size.split("x"))
    config = RunConfig(
        model=model,
        scale=args.scale,
        device=args.device,
        cpu_workers=workers,
        colour="off",
        tile=tile,
    )
    formats = PlaneFormats(FMT, FMT, "yuv420p")
    times = []
    for _ in range(2):
        compute = build_compute(config, w, h, formats)
        compute.processor.process(_frames(1, w, h))  # allocations, kernel choice
        frames = _frames(args.frames, w, h)
        sink = _NullSink()
        start = time.perf_counter()
        compute.run(lambda _stop, f=frames: iter(f), sink, queue_size=4)
        times.append((time.perf_counter() - start) / sink.frames)
    p = compute.processor
    plan = f"tile {compute.tile}, batch {compute.batch_size}, {p.schedule}"
    return sorted(times)[0], plan


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", default="640x360")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights-out", type=Path, default=None)
    p.add_argument(
        "--tiles",
        default=None,
        help="tile sizes to run each model at, e.g. 192,256,320 (default: the planner's)",
    )
    p.add_argument(
        "--workers-only",
        action="store_true",
        help="only the command line's layout (--threads workers x 1 thread)",
    )
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--heap",
        choices=("kept", "system"),
        default="kept",
        help="kept: freed memory kept for the next tile, as the CLI runs (vidsr.allocator); "
        "system: glibc's defaults",
    )
    args = p.parse_args()
    heap = keep_freed_memory() if args.heap == "kept" else False
    layouts = [(args.threads, 1)] if args.workers_only else [(args.threads, 1), (1, args.threads)]
    tiles = [int(t) for t in args.tiles.split(",")] if args.tiles else [None]
    print(banner())
    print(f"heap: {'freed memory kept (vidsr.allocator)' if heap else 'C library defaults'}")
    print(f"{args.size} x{args.scale}, {args.frames} frames, compute stage only, {args.device}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights_out or Path(tmp) / f"temporal_x{args.scale}.safetensors"
        write_random_weights(weights, args.scale)
        for tile in tiles:
            for name, model in (("quality", "quality"), ("temporal", str(weights))):
                for workers, threads in layouts:
                    spf, plan = seconds_per_frame(model, args, workers, threads, tile)
                    rows.append(
                        {
                            "model": name,
                            "workers": workers,
                            "threads": threads,
                            "tile": tile,
                            "spf": spf,
                        }
                    )
                    print(
                        f"{name:>9}: {workers} worker(s) x {threads} thread(s): "
                        f"{spf * 1000:7.0f} ms/frame  ({plan})"
                    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
