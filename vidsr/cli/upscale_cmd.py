"""``vidsr upscale INPUT [-o OUTPUT] --scale N ...``"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vidsr.config import COLOUR_MODES, EncodeConfig, RunConfig
from vidsr.pipeline import RunSummary, upscale_video
from vidsr.upscaler import default_model

log = logging.getLogger(__name__)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Model, device and batching options shared by the commands that upscale."""
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="upscaling factor (default 2)")
    parser.add_argument("--model", default=None,
                        help="model name (see `vidsr models`) or a .pth/.safetensors file; default: the fast model")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per model call (default: from frame size)")
    parser.add_argument("--tile", type=int, default=None, metavar="PX",
                        help="process frames in overlapping tiles of PX input pixels (for large frames)")
    parser.add_argument("--color", "--colour", dest="colour", choices=COLOUR_MODES, default="shot",
                        help="colour matching to the source: per shot (default), per frame, or off")


def add_encode_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default="libx264",
                        help="video encoder: libx264 (default), libx265, libsvtav1, ffv1, prores_ks, h264_nvenc...")
    parser.add_argument("--crf", type=int, default=None, help="quality (lower is better; encoder default if unset)")
    parser.add_argument("--preset", default=None, help="encoder preset, e.g. medium, fast, veryfast")
    parser.add_argument("--pix-fmt", default=None,
                        help="output pixel format (default: keep the input's bit depth: yuv420p or yuv420p10le)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("upscale", help="upscale a video file",
                            description="Upscale a video, keeping audio, subtitles, timestamps and colour tags.")
    parser.add_argument("input", type=Path, help="input video file")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output file (default: INPUT_x<scale>.<ext> next to the input)")
    add_run_options(parser)
    add_encode_options(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    encode = EncodeConfig(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt)
    model = args.model or default_model(args.scale)
    return RunConfig(model=model, scale=args.scale, device=args.device, batch_size=args.batch_size,
                     tile=args.tile, colour=args.colour, overwrite=args.overwrite, encode=encode)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    summary = run_with_progress(args.input, args.output, config)
    print(format_summary(summary))
    return 0


def run_with_progress(src: Path, dst: Path | None, config: RunConfig) -> RunSummary:
    """Run the pipeline with a tqdm bar (frames, fps, ETA) on stderr."""
    bar: tqdm | None = None

    def on_start(info, plan) -> None:  # noqa: ANN001
        nonlocal bar
        bar = tqdm(total=info.frame_count, unit="frame", desc=f"{src.name} -> {plan.width}x{plan.height}",
                   dynamic_ncols=True, leave=False)

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    with logging_redirect_tqdm():
        try:
            return upscale_video(src, dst, config, progress=progress, on_start=on_start)
        finally:
            if bar is not None:
                bar.close()


def format_summary(s: RunSummary) -> str:
    size = s.output_bytes / 1e6
    lost = f", {s.corrupt_packets} corrupt packet(s) skipped" if s.corrupt_packets else ""
    return f"wrote {s.output}: {s.frames} frames in {s.seconds:.1f} s ({s.fps:.1f} fps), {size:.1f} MB{lost}"
