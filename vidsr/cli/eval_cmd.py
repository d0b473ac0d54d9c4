"""``vidsr eval``: score a model on HR images or videos under the standard SR protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="measure Y-PSNR/SSIM of a model against bicubic on HR images or videos",
        description="Mod-crop each HR image (or every frame of a video), make the LR image "
                    "with MATLAB-compatible bicubic, upscale it, and report PSNR and SSIM on "
                    "the Y channel (BT.601 studio range) with SCALE border pixels cropped, "
                    "per image and averaged, beside the bicubic baseline.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="folder of HR images, frame folder, image file or video file")
    p.add_argument("--model", "-m", required=True,
                   help="registry name (see `vidsr models`) or a .pth/.safetensors file")
    p.add_argument("--scale", "-s", type=int, required=True, help="upscaling factor")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--summary", action="store_true", help="only per-clip and mean rows")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidsr.device import resolve_device
    from vidsr.evaluate import evaluate, format_table
    from vidsr.upscaler import load_model

    device = resolve_device(args.device)
    model = load_model(args.model, args.scale)
    report = evaluate(model, [Path(p) for p in args.paths], device=device)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(report, per_image=not args.summary))
    return 0
