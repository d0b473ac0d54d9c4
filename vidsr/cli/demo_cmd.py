"""``vidsr demo``: render a test clip and upscale it, to see vidsr work in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidsr.cli.options import add_command
from vidsr.cli.upscale_cmd import format_summary, model_label, run_with_progress
from vidsr.config import SCALES, RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "demo", run)
    parser.add_argument(
        "--out-dir", type=Path, default=Path("."), help="where to write the clips (default: here)"
    )
    parser.add_argument("--scale", type=int, default=2, choices=SCALES)
    parser.add_argument(
        "--model",
        default=None,
        help="model name (default: fast-ecb, the re-parameterised fast net)",
    )
    parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    """render a test clip and upscale it (no download needed)"""
    from vidsr.device import cpu_workers_for, set_cpu_threads
    from vidsr.engine.upscaler import resolve_model
    from vidsr.media.demo_clip import render_demo_clip

    args.out_dir.mkdir(parents=True, exist_ok=True)
    src = render_demo_clip(args.out_dir / "vidsr-demo.mp4")
    print(f"rendered {src} (320x180, 4 s, test pattern + 440 Hz tone)")
    model = resolve_model(args.model, args.scale)
    workers = cpu_workers_for(args.device, None)
    if workers is not None:  # the CPU policy of `vidsr upscale`
        set_cpu_threads(1)
    config = RunConfig(
        model=model, scale=args.scale, device=args.device, overwrite=True, cpu_workers=workers
    )
    summary = run_with_progress(src, args.out_dir / f"vidsr-demo_x{args.scale}.mp4", config)
    print(format_summary(summary, model_label(config)))
    return 0
