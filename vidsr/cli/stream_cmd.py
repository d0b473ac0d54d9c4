"""``vidsr stream --source SRC [--show] [--record OUT] [--serve HOST:PORT] ...``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vidsr.cli.options import (
    add_colour_option,
    add_command,
    add_device_option,
    add_precision_option,
    add_threads_option,
    add_tile_option,
    from_args,
)
from vidsr.config import SCALES, EncodeConfig, RunConfig

if TYPE_CHECKING:  # the live pipeline (torch, PyAV, OpenCV) is imported when the command runs
    from vidsr.pipeline.live.stream import StreamStats, StreamSummary


def _address(text: str) -> tuple[str, int]:
    from vidsr.pipeline.live.server import parse_address

    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "stream", run)
    _add_model_options(parser)
    _add_output_options(parser)
    _add_run_options(parser)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The source, and how it is upscaled."""
    parser.add_argument(
        "--source",
        required=True,
        help="camera index (0) or /dev/videoN; a video file; an rtsp:// or http:// URL; "
        "or lavfi:GRAPH (e.g. lavfi:testsrc2=size=320x240:rate=30)",
    )
    parser.add_argument(
        "--scale", type=int, default=2, choices=SCALES, help="upscaling factor (default 2)"
    )
    parser.add_argument(
        "--model", default=None, help="model name (default: fast-ecb, else fast, else bicubic)"
    )
    add_device_option(parser, "auto, cpu, cuda or cuda:N (default auto)")
    add_tile_option(parser, "process frames in tiles of PX pixels")
    add_colour_option(
        parser,
        "colour matching: shot (causal, no added latency; default for learned models), "
        "frame, or off (default for bicubic and lanczos)",
        default=None,
    )
    add_precision_option(parser)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where the upscaled frames go: a window, a recording, an MJPEG server."""
    parser.add_argument(
        "--show", action="store_true", help="show an OpenCV window (s: split view, q: quit)"
    )
    parser.add_argument(
        "--record", type=Path, default=None, metavar="OUT", help="record the upscaled video"
    )
    parser.add_argument(
        "--codec", default=None, help="recording encoder (default libx264; libvpx-vp9 for .webm)"
    )
    parser.add_argument("--crf", type=int, default=None, help="recording quality")
    parser.add_argument(
        "--preset", default=None, help="recording preset (default veryfast for x264/x265)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing recording")
    parser.add_argument(
        "--serve",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="serve MJPEG (/stream.mjpg, /split.mjpg) and a page (/); PORT alone binds 127.0.0.1",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """When the stream stops, its pacing, threads and status line."""
    parser.add_argument("--frames", type=int, default=None, help="stop after N output frames")
    parser.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    parser.add_argument(
        "--no-pace",
        dest="paced",
        action="store_false",
        default=None,
        help="read files and lavfi graphs as fast as possible instead of at their frame rate",
    )
    add_threads_option(
        parser,
        "CPU threads for the model (default: torch's choice); on a machine busy with "
        "other work, 1 often gives lower and steadier latency",
    )
    parser.add_argument("--quiet", action="store_true", help="no status line")


def run(args: argparse.Namespace) -> int:
    """upscale a live source (webcam, stream, file) with low latency

    Capture a live source, upscale each newest frame (stale frames are dropped) and show,
    record and/or serve it. Keys in the --show window: s = bicubic | vidsr, q = quit.
    """
    from vidsr.device import set_cpu_threads
    from vidsr.engine.upscaler import default_colour
    from vidsr.pipeline.live.stream import StreamConfig, run_stream

    set_cpu_threads(args.threads)
    # --threads is the model's CPU threads (set above), not the encoder's.
    encode = from_args(EncodeConfig, args, skip=("threads",))
    colour = args.colour or default_colour(args.model, args.scale)
    run = from_args(RunConfig, args, encode=encode, colour=colour)
    config = from_args(StreamConfig, args, run=run)

    def on_ready(url: str | None) -> None:
        if not (args.show or args.record or args.serve):
            print(
                "vidsr: note: no --show, --record or --serve: frames are upscaled and measured "
                "only",
                file=sys.stderr,
            )
        if url is not None:
            print(
                f"serving {url} (MJPEG: {url}stream.mjpg, split view: {url}split.mjpg)",
                file=sys.stderr,
                flush=True,
            )

    def on_stats(stats: StreamStats) -> None:
        if not args.quiet:
            print(f"\r{stats.line()}", end="", file=sys.stderr, flush=True)

    try:
        summary = run_stream(config, on_stats=on_stats, on_ready=on_ready)
    except KeyboardInterrupt:
        if not args.quiet:
            print(file=sys.stderr)
        if args.record is not None and args.record.exists():
            print(f"vidsr: recording saved to {args.record}", file=sys.stderr)
        raise
    if not args.quiet:
        print(file=sys.stderr)
    print(format_summary(summary))
    return 0


def format_summary(s: StreamSummary) -> str:
    st = s.stats
    text = (
        f"stream {s.source} ended: {s.end_reason}. {st.frames} frames {s.width}x{s.height} -> "
        f"{s.out_width}x{s.out_height} [{s.model}] in {s.seconds:.1f} s ({st.fps:.1f} fps), "
        f"latency p50 {st.latency_p50_ms:.0f} ms p95 {st.latency_p95_ms:.0f} ms, "
        f"{st.dropped} of {s.captured} captured frames dropped"
    )
    if s.record is not None:
        text += f"; recorded {s.record}"
    return text
