"""``vidsr upscale INPUT [-o OUTPUT] --scale N ...``"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from vidsr.cli.cluster_options import add_cluster_option
from vidsr.cli.options import (
    add_colour_option,
    add_command,
    add_device_option,
    add_precision_option,
    add_threads_option,
    add_tile_option,
    from_args,
)
from vidsr.config import (
    AUDIO_MODES,
    CONTENTS,
    DEINTERLACE_MODES,
    HWACCEL_MODES,
    OUTPUT_FORMATS,
    RESAMPLERS,
    SCALES,
    SWSCALE_MODELS,
    EncodeConfig,
    RunConfig,
)
from vidsr.errors import OptionError

if TYPE_CHECKING:  # the pipeline (torch, PyAV, OpenCV) is imported when a command runs
    from vidsr.pipeline.folders import FolderOptions, FolderSummary
    from vidsr.pipeline.jobs import Executor, Job, JobResult
    from vidsr.pipeline.segmented import SegmentedSummary
    from vidsr.pipeline.video import RunSummary

log = logging.getLogger(__name__)

# scheme://... as typed: Path() would fold the double slash ("https:/host/...").
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Model, device and batching options shared by the commands that upscale."""
    parser.add_argument(
        "-s",
        "--scale",
        type=int,
        default=None,
        choices=SCALES,
        help="upscaling factor (default: a model file's own scale, else 2)",
    )
    parser.add_argument(
        "-m",
        "--model",
        default=None,
        help="model name (see `vidsr models`) or a .pth/.safetensors file "
        "(e.g. ./vidsr-models/NAME_x2.safetensors from `vidsr train "
        "--export`); default: fast-ecb (the re-parameterised fast net)",
    )
    add_device_option(parser, "auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="frames per model call (default: from frame size)",
    )
    add_tile_option(
        parser, "process frames in overlapping tiles of PX input pixels (for large frames)"
    )
    add_threads_option(parser, "CPU model workers, one thread each (default: one per core)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile the model with torch.compile (faster on long videos; slow first batches)",
    )
    parser.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the model over the 8 flips/rotations of each frame: "
        "8x the compute for a sharper, higher-PSNR result",
    )
    add_colour_option(
        parser,
        "colour matching to the source: per shot (default for learned models), per frame, "
        "or off (default for bicubic and lanczos, which keep the source's colours)",
        default=None,
    )
    add_precision_option(parser)
    parser.add_argument(
        "--content",
        choices=CONTENTS,
        default="auto",
        help="weights for clean sources or for compressed video (web, DVD, "
        "phone): auto (default) decides from the input's codec and bit rate",
    )
    parser.add_argument(
        "--resampler",
        choices=RESAMPLERS,
        default="exact",
        help="how --model bicubic|lanczos scales: exact (default, MATLAB's kernel and "
        "borders) or swscale (FFmpeg's own scaler, as `ffmpeg -vf scale`: faster, within "
        "one code inside the frame, edges repeated at the borders); swscale needs --color "
        "off, the CPU, 8-bit video in and out",
    )


def add_encode_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--codec",
        default=None,
        help="video encoder: libx264 (default; libvpx-vp9 for .webm), libx265, "
        "libvpx-vp9, libsvtav1, ffv1, prores_ks, h264_nvenc...",
    )
    parser.add_argument(
        "--audio",
        choices=AUDIO_MODES,
        default="copy",
        help="audio tracks: copy them (default), re-encode them to aac or opus "
        "(for a container that cannot hold the original), or none (drop)",
    )
    parser.add_argument(
        "--hwaccel",
        choices=HWACCEL_MODES,
        default="none",
        help="hardware codecs: auto (NVDEC decode, and NVENC encode unless --codec is "
        "given, where they work; else software), cuda (NVDEC required), none (default)",
    )
    parser.add_argument(
        "--crf", type=int, default=None, help="quality (lower is better; encoder default if unset)"
    )
    parser.add_argument(
        "--preset", default=None, help="encoder preset, e.g. medium, fast, veryfast"
    )
    parser.add_argument(
        "--pix-fmt",
        default=None,
        help="output pixel format (default: keep the input's bit depth: yuv420p or yuv420p10le)",
    )
    parser.add_argument(
        "--gop", type=int, default=None, help="keyframe interval in frames (default: 2 seconds)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--deinterlace",
        nargs="?",
        const="frame",
        choices=DEINTERLACE_MODES,
        default=None,
        help="deinterlace (bwdif) before the model: frame "
        "(default) gives one frame per frame, field one per field (2x rate)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its .partial output instead of starting over",
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "upscale", run)
    parser.add_argument(
        "input",
        nargs="*",
        default=[],
        metavar="INPUT",
        help="input video file or folder of images (or give it with -i); several videos "
        "or folders of videos (searched recursively) upscale a library into the -o folder",
    )
    parser.add_argument(
        "--inputs",
        dest="input_lists",
        action="append",
        default=[],
        type=Path,
        metavar="LIST",
        help="a file listing inputs, one per line (# comments; relative to the file's "
        "folder): a library run",
    )
    parser.add_argument(
        "-i",
        "--input",
        dest="input_option",
        default=None,
        metavar="INPUT",
        help="the input, as ffmpeg takes it (instead of the positional INPUT)",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help="output file, or folder (an existing folder, a name ending in / or without "
        "extension) (default: INPUT_x<scale>[.<ext>] next to the input)",
    )
    add_run_options(parser)
    add_encode_options(parser)
    add_cluster_option(parser)
    parser.add_argument(
        "--segments",
        type=int,
        default=None,
        metavar="N",
        help="with --cluster and one video: split it into about N segments (default: 2 per "
        "worker), starting at shot cuts or, in long shots, at keyframes, upscaled in "
        "parallel and joined by stream copy into the same output as a run here. Under "
        "--color shot the segments of one shot run one after another (its colour state "
        "goes on from segment to segment): shots run in parallel, one long shot does not; "
        "--color frame or off makes every segment parallel. A rerun after an interruption "
        "reuses the finished segments. Recurrent (temporal) models are refused",
    )
    frames = parser.add_argument_group("frame folders")
    frames.add_argument(
        "--format",
        dest="image_format",
        choices=sorted(OUTPUT_FORMATS),
        default=None,
        help="output image format (default: keep each image's; png for frames of a video)",
    )
    frames.add_argument(
        "--fps",
        type=_rate,
        default=None,
        help="frame rate when encoding a folder as a video "
        "(e.g. 24, 23.976, 24000/1001; default 25)",
    )
    # --resume (shared with videos, see add_encode_options) skips frames whose output image
    # exists: images are written atomically, so an existing one is complete.
    frames.add_argument(
        "--strict", action="store_true", help="stop at an unreadable image instead of skipping it"
    )


def _rate(text: str) -> Fraction:
    try:
        rate = Fraction(text).limit_denominator(1001 * 1000)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r}") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"frame rate must be > 0, got {text}")
    return rate


def _is_folder(output: str) -> bool:
    """An output names a folder when it ends with a separator, is one, or has no extension."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir() or Path(output).suffix == ""


def input_path(args: argparse.Namespace) -> Path:
    """The input given positionally or with ``-i`` (exactly one), as a path.

    Raises:
        OptionError: none or both given, or a URL (those are for ``vidsr stream``).
    """
    given = [*args.input, *([args.input_option] if args.input_option is not None else [])]
    if len(given) != 1:
        raise OptionError(
            "give one input: `vidsr upscale INPUT` or `vidsr upscale -i INPUT`"
            if not given
            else "give the input once: positionally or with -i"
        )
    text = given[0]
    if _URL.match(text):
        raise OptionError(
            f"{text} is a URL: `vidsr upscale` reads files and folders; "
            f"network streams are for `vidsr stream --source {text}`"
        )
    return Path(text)


def resolve_scale(args: argparse.Namespace) -> int:
    """``--scale``, or without it a model file's own scale (read from the file, before any
    work), else 2. Says on stderr when the file decided."""
    if args.scale is not None:
        return args.scale
    from vidsr.engine.upscaler import is_external, model_file_scale

    if args.model is None or not is_external(args.model):
        return 2
    own = model_file_scale(args.model)
    if own is None or own == 2:
        return 2
    print(f"vidsr: {Path(args.model).name} is a x{own} model: upscaling x{own}", file=sys.stderr)
    return own


def config_from_args(
    args: argparse.Namespace, cpu_workers: int | None = None, scale: int | None = None
) -> RunConfig:
    from vidsr.engine.upscaler import default_colour

    # --threads is the model's CPU workers (``cpu_workers``), not the encoder's threads.
    encode = from_args(EncodeConfig, args, skip=("threads",))
    # No --model: None, the library's default too (vidsr.engine.upscaler.resolve_model).
    scale = scale or args.scale or 2
    return from_args(
        RunConfig,
        args,
        scale=scale,
        cpu_workers=cpu_workers,
        encode=encode,
        colour=args.colour or default_colour(args.model, scale),
    )


def run(args: argparse.Namespace) -> int:
    """upscale a video file or a folder of frames

    Upscale a video, keeping audio, subtitles, timestamps and colour tags; or a folder of
    images (frames/ -o out/, or frames/ --fps 24 -o out.mp4); or a video into a folder of
    images (movie.mp4 -o out/); or a library of videos (a.mp4 b.mkv season1/ -o out/, or
    --inputs list.txt), skipping the outputs already complete. With --cluster auto|ADDRESS
    the videos of a library are shared among Ray workers, and one video is split into
    --segments that the workers upscale in parallel.
    """
    from vidsr.pipeline.folders import FolderOptions

    if is_library(args):
        return run_library_command(args)
    if args.cluster is not None:
        return run_segmented_command(args)
    for given, option in ((args.workers, "--workers"), (args.segments, "--segments")):
        if given is not None:
            raise OptionError(f"{option} needs --cluster (without it one worker runs here)")
    src = input_path(args)
    config = run_config(args)
    output = args.output
    ran_on = model_label(config)
    if src.is_dir() or (output is not None and _is_folder(output)):
        if config.hwaccel != "none":
            raise OptionError("--hwaccel applies to video-to-video runs, not to frame folders")
        if config.resampler != "exact":
            raise OptionError("--resampler swscale applies to video-to-video runs, not folders")
        options = FolderOptions(
            image_format=args.image_format,
            fps=args.fps or Fraction(25),
            strict=args.strict,
            resume=args.resume,
        )
        if src.is_dir() and args.fps is None and output is not None and not _is_folder(output):
            log.warning("no --fps given: encoding the frames at 25 fps")
        summary = run_folder_with_progress(src, Path(output) if output else None, config, options)
        print(format_folder_summary(summary, ran_on))
        return 0
    summary = run_with_progress(src, Path(output) if output else None, config)
    print(format_summary(summary, ran_on))
    return 0


def is_library(args: argparse.Namespace) -> bool:
    """Whether the inputs make a library run: several inputs, a list file, or a single
    folder of videos (a folder with images at its top level is a folder of frames)."""
    if args.input_lists:
        return True
    if args.input and args.input_option is not None:
        return False  # one input twice: input_path says so
    named = [*args.input, *([args.input_option] if args.input_option is not None else [])]
    if len(named) > 1:
        return True
    if len(named) != 1 or _URL.match(named[0]) or not Path(named[0]).is_dir():
        return False
    from vidsr.pipeline.library import is_video_folder

    return is_video_folder(Path(named[0]))


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run's settings from the options; on the CPU, sets one torch thread per model
    worker (the workers run side by side)."""
    from vidsr.device import cpu_workers_for, set_cpu_threads

    workers = cpu_workers_for(args.device, args.threads)
    if workers is not None:
        set_cpu_threads(1)
    return config_from_args(args, workers, resolve_scale(args))


def model_label(config: RunConfig) -> str:
    """``model fast x2 on cpu``: the model a run uses (a file by its name) and the device,
    for the summary line; an interpolation baseline says which resampler ran
    (``model bicubic x2 on cpu, swscale resampler``)."""
    from vidsr.device import device_label
    from vidsr.engine.upscaler import is_external, resolve_model

    name = resolve_model(config.model, config.scale)
    shown = Path(name).name if is_external(name) else name
    ensemble = " (self-ensemble)" if config.self_ensemble else ""
    resampler = f", {config.resampler} resampler" if name in SWSCALE_MODELS else ""
    return f"model {shown} x{config.scale}{ensemble} on {device_label(config.device)}{resampler}"


def run_folder_with_progress(
    src: Path, dst: Path | None, config: RunConfig, options: FolderOptions
) -> FolderSummary:
    """Run a frame-folder job (folder -> folder/video, video -> folder) with a tqdm bar."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vidsr.pipeline.folders import upscale_folder, video_to_folder

    bar: tqdm | None = None

    def on_start(total: int) -> None:
        nonlocal bar
        bar = tqdm(
            total=total or None, unit="frame", desc=src.name, dynamic_ncols=True, leave=False
        )

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    with logging_redirect_tqdm():
        try:
            if src.is_dir():
                return upscale_folder(
                    src, dst, config, options, progress=progress, on_start=on_start
                )
            assert dst is not None
            return video_to_folder(src, dst, config, options, progress=progress, on_start=on_start)
        finally:
            if bar is not None:
                bar.close()


def format_folder_summary(s: FolderSummary, ran_on: str = "") -> str:
    extra = "".join(
        [
            f", {ran_on}" if ran_on else "",
            f", {s.resumed} already done" if s.resumed else "",
            f", {s.skipped} file(s) skipped" if s.skipped else "",
        ]
    )
    return f"wrote {s.output}: {s.frames} frames in {s.seconds:.1f} s ({s.fps:.1f} fps){extra}"


def run_with_progress(src: Path, dst: Path | None, config: RunConfig) -> RunSummary:
    """Run the pipeline with a tqdm bar (frames, fps, ETA) on stderr."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vidsr.pipeline.video import upscale_video

    bar: tqdm | None = None

    def on_start(info, plan) -> None:  # noqa: ANN001
        nonlocal bar
        bar = tqdm(
            total=info.frame_count,
            unit="frame",
            desc=f"{src.name} -> {plan.width}x{plan.height}",
            dynamic_ncols=True,
            leave=False,
        )

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    with logging_redirect_tqdm():
        try:
            return upscale_video(src, dst, config, progress=progress, on_start=on_start)
        finally:
            if bar is not None:
                bar.close()


def format_summary(s: RunSummary, ran_on: str = "") -> str:
    """The closing line of a run; ``ran_on`` is :func:`model_label`'s."""
    size = s.output_bytes / 1e6
    lost = f", {s.corrupt_packets} corrupt packet(s) skipped" if s.corrupt_packets else ""
    if s.frames_lost:
        about = "about " if s.expected_is_estimate else ""
        lost += (
            f", {about}{s.frames_lost} of {s.expected_frames} frames could not be decoded "
            "(damaged input)"
        )
    if s.timestamp_repairs:
        lost += f", {s.timestamp_repairs} timestamp(s) repaired (damaged input)"
    codecs = f", {s.decoder} decode, {s.encoder}" if s.encoder else ""
    model = f", {ran_on}" if ran_on else ""
    if s.precision != "fp32":
        model += f" ({s.precision})"
    weights = f", {s.content} weights ({s.content_reason})" if s.content_reason else ""
    resumed = f" (resumed at frame {s.resumed_at})" if s.resumed_at else ""
    return (
        f"wrote {s.output}: {s.frames} frames{resumed} in {s.seconds:.1f} s ({s.fps:.1f} fps), "
        f"{size:.1f} MB{model}{weights}{codecs}{lost}"
    )


def run_library_command(args: argparse.Namespace) -> int:
    """``vidsr upscale a.mp4 b.mkv season1/ -o out/``: every video into ``out/``, one
    progress bar over all their frames, a table of the files at the end; exit code 1 when
    any failed."""
    from vidsr.cli.cluster_options import cluster_executor
    from vidsr.pipeline.library import plan_jobs

    for given, option in ((args.image_format, "--format"), (args.fps, "--fps")):
        if given is not None:
            raise OptionError(f"{option} applies to frame folders, not to a library of videos")
    if args.strict:
        raise OptionError("--strict applies to frame folders, not to a library of videos")
    if args.input and args.input_option is not None:
        raise OptionError("give the inputs positionally or with -i, not both")
    if args.segments is not None:
        raise OptionError("--segments splits one video; a library runs each video whole")
    output_dir = _library_output(args.output)
    config = cluster_config(args, run_config(args))
    named = [*args.input, *([args.input_option] if args.input_option is not None else [])]
    jobs = plan_jobs(
        [Path(t) for t in named], output_dir, config.scale, input_lists=args.input_lists
    )
    with cluster_executor(args) as executor:  # first: a missing Ray leaves no -o folder
        if output_dir is not None:
            try:
                output_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OptionError(f"cannot create the output folder {output_dir}: {e}") from e
        ran_on = model_label(config) + workers_label(executor)
        results = run_library_with_progress(jobs, config, executor)
    print(format_library_table(results))
    print(format_library_total(results, ran_on))
    return 1 if any(r.status == "failed" for r in results) else 0


def cluster_config(args: argparse.Namespace, config: RunConfig) -> RunConfig:
    """With ``--cluster``, a CPU run's model workers per Ray worker: ``--threads``, else 1
    (each Ray worker runs torch on the cores it reserves); ``config`` as is otherwise."""
    from dataclasses import replace

    if args.cluster is None or config.cpu_workers is None:
        return config
    return replace(config, cpu_workers=args.threads or 1)


def workers_label(executor: Executor) -> str:
    """`` on 2 CPU worker(s) of a Ray cluster`` for a cluster executor, else empty."""
    plan = getattr(executor, "plan", None)
    kind = getattr(plan, "kind", None)
    return f", {executor.workers} {kind} worker(s) of a Ray cluster" if kind else ""


def run_segmented_command(args: argparse.Namespace) -> int:
    """``vidsr upscale movie.mkv --cluster auto [--segments N]``: one video in segments
    on the cluster's workers, stitched into one output."""
    from vidsr.cli.cluster_options import cluster_executor
    from vidsr.pipeline.segmented import refuse_stateful

    src = input_path(args)
    if src.is_dir() or (args.output is not None and _is_folder(args.output)):
        raise OptionError("--cluster upscales videos to videos, not frame folders")
    if args.segments is not None and args.segments < 1:
        raise OptionError(f"--segments must be >= 1, got {args.segments}")
    config = cluster_config(args, run_config(args))
    refuse_stateful(config)  # before any cluster starts
    dst = Path(args.output) if args.output else None
    with cluster_executor(args) as executor:
        ran_on = model_label(config) + workers_label(executor)
        summary = run_segmented_with_progress(src, dst, config, executor, args.segments)
    print(format_summary(summary, ran_on) + format_segments(summary))
    return 0


def run_segmented_with_progress(
    src: Path, dst: Path | None, config: RunConfig, executor: Executor, segments: int | None
) -> SegmentedSummary:
    """Run :func:`~vidsr.pipeline.segmented.upscale_segmented` with a tqdm bar."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vidsr.media.probe import probe
    from vidsr.pipeline.segmented import upscale_segmented

    total = probe(src).frame_count
    with (
        logging_redirect_tqdm(),
        tqdm(total=total, unit="frame", desc=src.name, dynamic_ncols=True, leave=False) as bar,
    ):
        return upscale_segmented(src, dst, config, executor, segments=segments, progress=bar.update)


def format_segments(s: SegmentedSummary) -> str:
    """``, 5 segments (2 reused), planning 0.4 s, stitching 0.1 s`` for the summary line."""
    reused = f" ({s.reused} reused from an interrupted run)" if s.reused else ""
    return (
        f", {s.segments} segments{reused}, planning {s.plan_seconds:.1f} s, "
        f"stitching {s.stitch_seconds:.1f} s"
    )


def _library_output(output: str | None) -> Path | None:
    """The output folder of a library run; ``None``: beside each input.

    Raises:
        OptionError: ``-o`` names a file.
    """
    if output is None:
        return None
    path = Path(output)
    if (path.exists() and not path.is_dir()) or not _is_folder(output):
        raise OptionError(
            f"with several inputs, -o names a folder for the outputs (got {output}; "
            "end it with / to create one)"
        )
    return path


def run_library_with_progress(
    jobs: list[Job], config: RunConfig, executor: Executor
) -> list[JobResult]:
    """Run a library with one tqdm bar over the frames of every video to do."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vidsr.pipeline.library import run_library

    bar: tqdm | None = None

    def on_start(total: int | None) -> None:
        nonlocal bar
        bar = tqdm(
            total=total, unit="frame", desc=f"{len(jobs)} videos", dynamic_ncols=True, leave=False
        )

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    with logging_redirect_tqdm():
        try:
            return run_library(jobs, config, executor, progress=progress, on_start=on_start)
        finally:
            if bar is not None:
                bar.close()


def format_library_table(results: list[JobResult]) -> str:
    """One row per input: input, status, frames, seconds and fps, or the error."""
    rows = [("input", "status", "frames", "seconds", "fps / error")]
    for r in results:
        if r.status == "failed":
            rows.append((str(r.job.src), r.status, "", "", r.error))
        elif r.status == "skipped":
            rows.append((str(r.job.src), r.status, "", "", f"complete: {r.job.dst}"))
        else:
            fps = r.frames / r.seconds if r.seconds > 0 else 0.0
            rows.append((str(r.job.src), r.status, str(r.frames), f"{r.seconds:.1f}", f"{fps:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[2].rjust(widths[2]), row[3].rjust(widths[3]), row[4]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_library_total(results: list[JobResult], ran_on: str = "") -> str:
    """``3 videos: 2 done, 0 skipped, 1 failed; 240 frames in 12.0 s, model ...``."""
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    frames = sum(r.frames for r in results)
    seconds = sum(r.seconds for r in results)
    model = f", {ran_on}" if ran_on else ""
    return (
        f"{len(results)} videos: {counts['done']} done, {counts['skipped']} skipped "
        f"(already complete), {counts['failed']} failed; {frames} frames in {seconds:.1f} s"
        f"{model}"
    )
