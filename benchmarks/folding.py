"""What folding the linear sub-pixel reconstruction (models/folding.py) saves: the quality
and temporal nets as loaded (their ``up`` + ``tail`` layers) against the folded copy the
pipeline runs, side by side in one run, alternated, on the same frames, with the largest
output difference.

Each frame goes through the model as the pipeline's CPU path runs it: channels-last
layers, tiles of ``--tile`` input pixels with the pipeline's overlap (the quality net
through :func:`~vidsr.engine.tiling.tiled_apply`, the recurrent net through
:class:`~vidsr.engine.recurrent.StatefulRunner`, its state carried from frame to frame),
float32, ``--threads`` torch threads. Shipped weights (the temporal net has no x3).

Usage: python benchmarks/folding.py [--size 640x360] [--frames 3] [--tile 192]
       [--threads 2] [--models quality@2,quality@3,quality@4,temporal@2,temporal@4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.engine.recurrent import StatefulRunner  # noqa: E402
from vidsr.engine.tiling import tiled_apply  # noqa: E402
from vidsr.engine.upscaler import load_model  # noqa: E402
from vidsr.models.contract import SRModel  # noqa: E402
from vidsr.models.folding import fold_reconstruction  # noqa: E402


def upscaler(model: SRModel, tile: int):
    """``frame (1, 1, h, w) -> (1, 1, s*h, s*w)`` as the pipeline's CPU path runs ``model``."""
    if model.stateful:
        runner = StatefulRunner(model, tile)
        first = [True]

        def step(x: torch.Tensor) -> torch.Tensor:
            out = runner.run(x, [first[0]])
            first[0] = False
            return out

        return step
    overlap = max(model.receptive_radius, 4)
    return lambda x: tiled_apply(model, x, model.scale, tile, overlap)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", default="640x360")
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--tile", type=int, default=192)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="quality@2,quality@3,quality@4,temporal@2,temporal@4")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(banner())
    w, h = (int(v) for v in args.size.split("x"))
    print(
        f"{args.size} frames, tile {args.tile}, {args.frames} frames per variant, "
        f"alternated; float32, channels-last, {args.threads} threads; ms per frame (median)"
    )
    gen = torch.Generator().manual_seed(0)
    frames = [torch.rand(1, 1, h, w, generator=gen) for _ in range(args.frames)]
    print(f"{'model':>12} {'as loaded':>10} {'folded':>10} {'speed-up':>9} {'max |diff|':>11}")
    for spec in args.models.split(","):
        name, scale = spec.split("@")
        original = load_model(name, int(scale)).eval().to(memory_format=torch.channels_last)
        folded, count = fold_reconstruction(original)
        if count == 0:
            print(f"{spec:>12}  nothing to fold")
            continue
        runs = {"as loaded": upscaler(original, args.tile), "folded": upscaler(folded, args.tile)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        outputs: dict[str, list[torch.Tensor]] = {k: [] for k in runs}
        with torch.inference_mode():
            for frame in frames:
                for key, run in runs.items():
                    start = time.perf_counter()
                    outputs[key].append(run(frame))
                    times[key].append(time.perf_counter() - start)
        diff = max(
            float((a - b).abs().max())
            for a, b in zip(outputs["as loaded"], outputs["folded"], strict=True)
        )
        before, after = (statistics.median(times[k]) * 1000 for k in runs)
        print(f"{spec:>12} {before:10.0f} {after:10.0f} {before / after:8.2f}x {diff:11.1e}")


if __name__ == "__main__":
    main()
