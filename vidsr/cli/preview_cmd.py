"""``vidsr preview VIDEO --models A,B [--at 10%,50%,90%] [--seconds 2] [-o preview.png]``"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidsr.cli.options import (
    add_colour_option,
    add_command,
    add_device_option,
    add_tile_option,
    from_args,
)
from vidsr.config import SCALES, RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "preview", run)
    parser.add_argument("input", type=Path, help="the video to sample")
    parser.add_argument(
        "--models", "-m", required=True, help="comma list of model names or weights files"
    )
    parser.add_argument(
        "--at",
        default="10%,50%,90%",
        help="comma list of sample points: N%% of the duration or seconds (90, 1:30); "
        "default 10%%,50%%,90%%",
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="length of each sample (default 2)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="the PNG grid (default: INPUT-preview.png in the current folder)",
    )
    parser.add_argument(
        "--clip",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write a split-screen clip of the samples (left: first model, right: second)",
    )
    parser.add_argument(
        "--scale", "-s", type=int, default=2, choices=SCALES, help="upscaling factor (default 2)"
    )
    add_device_option(parser, "auto, cpu, cuda or cuda:N")
    add_tile_option(parser, "process frames in tiles of PX pixels (default: as upscale)")
    add_colour_option(parser, "colour matching, as for upscale (default shot)")
    parser.add_argument(
        "--overwrite", "-y", action="store_true", help="replace the grid and clip if they exist"
    )


def run(args: argparse.Namespace) -> int:
    """try models on a few samples of a video: comparison grid, fps, projected time

    Upscale a few short samples spread over a video with each model and write a side-by-side
    PNG grid (whole frames and the centre zoomed; the input enlarged with nearest and
    bicubic for reference), optionally a split-screen clip, and print each model's speed
    here with the projected time for the whole video. Look before a long run.
    """
    from vidsr.pipeline.preview import PreviewConfig, format_hms, preview

    models = tuple(name.strip() for name in args.models.split(",") if name.strip())
    at = tuple(point.strip() for point in args.at.split(",") if point.strip())
    output = args.output or Path(f"{args.input.stem}-preview.png")
    run_config = from_args(RunConfig, args)
    config = from_args(PreviewConfig, args, models=models, output=output, at=at, run=run_config)
    result = preview(args.input, config)
    points = ", ".join(format_hms(p, 1) for p in result.points)
    print(f"sampled {args.input} at {points}")
    width = max(len(t.name) for t in result.timings)
    for t in result.timings:
        if t.projected_seconds is None:
            whole = "whole video: unknown length"
        else:
            eta = format_hms(t.projected_seconds)
            whole = f"whole video ({result.total_frames} frames) in about {eta}"
        print(f"{t.name:<{width}}  {t.fps:7.1f} fps on {result.device} (model only), {whole}")
    w, h = result.grid_size
    print(f"wrote {result.grid} ({w}x{h})")
    if result.clip is not None:
        print(f"wrote {result.clip}")
    return 0
