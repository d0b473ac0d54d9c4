"""bf16 convolutions on the CPU against fp32: what they cost in PSNR, what they save in time.

For each shipped model at each ``--scales``: Y-PSNR/SSIM on Set5 and Set14 under vidsr's
protocol (``vidsr eval``: HR mod-cropped, LR by MATLAB-compatible bicubic, Y of BT.601
``rgb2ycbcr``, ``scale`` border pixels cropped, mean per image) with the model in fp32 and
with its convolutions in bf16 (:func:`vidsr.engine.precision.with_bf16_convolutions`, what
``--precision auto`` runs on CPUs with native bf16), and the model's forward time on one
640x360 luma frame with one torch thread, channels-last as the pipeline runs it, fp32 and
bf16 alternated, median of ``--repeats`` (thread CPU time, so other processes on the machine
count less). ``--tile PX`` times the frame in the pipeline's CPU tiles instead (PX input
pixels, overlapped by the model's receptive radius, as
``vidsr.pipeline.planning.CPU_CACHE_TILE`` cuts them: 192). Prints the machine, the versions
and one row per model.

Usage: python benchmarks/cpu_precision.py [--models fast,fast-hq,quality] [--scales 2,4]
       [--repeats 7] [--tile 192] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from common import banner

from vidsr.engine.precision import cpu_has_native_bf16, with_bf16_convolutions
from vidsr.engine.tiling import tiled_apply
from vidsr.engine.upscaler import load_model
from vidsr.eval.evaluate import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def forward_ms(
    models: dict[str, torch.nn.Module], repeats: int, tile: int | None = None, scale: int = 2
) -> dict[str, float]:
    """Median thread-CPU milliseconds per forward on a 640x360 frame, the models
    alternated call by call; in ``tile``-pixel tiles (overlap: each model's
    ``receptive_radius``) when ``tile`` is given."""
    x = torch.rand(1, 1, 360, 640).contiguous(memory_format=torch.channels_last)

    def run(model: torch.nn.Module) -> None:
        if tile is None:
            model(x)
        else:
            tiled_apply(model, x, scale, tile, model.receptive_radius)

    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            run(model)  # warm: oneDNN picks and caches its kernels
        for _ in range(repeats):
            for name, model in models.items():
                start = time.thread_time()
                run(model)
                times[name].append((time.thread_time() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="fast,fast-hq,fast-ecb,srcnn,quality")
    p.add_argument("--scales", default="2,4")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--tile", type=int, default=None, help="time in tiles of PX input pixels")
    p.add_argument("--no-psnr", action="store_true", help="time only")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(banner())
    print(f"native bf16 on this CPU (AMX / AVX-512 BF16): {cpu_has_native_bf16()}")
    frame = "whole 640x360 frame" if args.tile is None else f"640x360 frame in {args.tile} px tiles"
    print(f"timing: one {frame}, 1 thread, channels-last, median of {args.repeats}")
    sets = {} if args.no_psnr else {name: DATA / name for name in ("Set5", "Set14")}
    missing = [str(path) for path in sets.values() if not path.is_dir()]
    if missing:
        print(f"skipping PSNR: {', '.join(missing)} not found")
    head = f"{'model':<12}{'x':>2}  {'Set5 fp32 / bf16':>18}  {'Set14 fp32 / bf16':>18}"
    print(head + f"  {'ms fp32':>8} {'ms bf16':>8} {'speed-up':>8}")
    rows = []
    for scale in (int(s) for s in args.scales.split(",")):
        for name in args.models.split(","):
            try:
                fp32 = load_model(name, scale).eval().to(memory_format=torch.channels_last)
            except Exception as error:  # a model without weights at this scale
                print(f"{name:<12}{scale:>2}  skipped: {str(error).splitlines()[0]}")
                continue
            bf16, converted = with_bf16_convolutions(fp32)
            row = {"model": name, "scale": scale, "converted_convs": converted}
            for set_name, path in sets.items():
                if path.is_dir():
                    for label, model in (("fp32", fp32), ("bf16", bf16)):
                        row[f"{set_name}_{label}"] = evaluate(model, [path]).psnr
            ms = forward_ms({"fp32": fp32, "bf16": bf16}, args.repeats, args.tile, scale)
            row |= {"ms_fp32": ms["fp32"], "ms_bf16": ms["bf16"]}
            rows.append(row)
            cells = [
                f"{row[f'{s}_fp32']:.3f} / {row[f'{s}_bf16']:.3f}" if f"{s}_fp32" in row else "-"
                for s in ("Set5", "Set14")
            ]
            print(
                f"{name:<12}{scale:>2}  {cells[0]:>18}  {cells[1]:>18}  {ms['fp32']:8.1f} "
                f"{ms['bf16']:8.1f} {ms['fp32'] / ms['bf16']:7.2f}x"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
