"""``vidsr dataset build``: cut a patch training set from videos and image folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidsr.cli import DefaultsFormatter
from vidsr.cli.options import add_command, from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="build training datasets (patch shards)")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = add_command(sub, "build", run, formatter_class=DefaultsFormatter)
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, images or folders")
    b.add_argument("--out", required=True, help="output folder (must be empty)")
    b.add_argument("--scale", type=int, required=True, help="SR factor (2, 3, 4, ...)")
    b.add_argument(
        "--patch", type=int, default=48, help="HR patch size in pixels (a multiple of --scale)"
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the patch positions")
    b.add_argument(
        "--max-patches", type=int, default=64, help="patches at most per image or kept frame"
    )
    b.add_argument(
        "--coverage",
        type=float,
        default=2.0,
        help="patches per frame ~ coverage * area / patch^2 (capped)",
    )
    b.add_argument(
        "--frame-step", type=int, default=1, help="look at every Nth video frame (1: all)"
    )
    b.add_argument(
        "--max-frames",
        type=int,
        default=0,
        help="kept frames per video, spread evenly over its shots (0: all)",
    )
    b.add_argument(
        "--frames-per-shot",
        type=int,
        default=0,
        help="kept frames per shot, spread evenly over it (0: all)",
    )
    b.add_argument(
        "--min-diff",
        type=float,
        default=3.0,
        help="skip frames closer than this (mean abs, 0..255) to the last kept",
    )
    b.add_argument("--shard-size", type=int, default=1024, help="patch pairs per shard")
    b.add_argument(
        "--degrade",
        action="append",
        default=[],
        metavar="SPEC",
        help="LR degradation, repeatable, applied in order: jpeg:QUALITY, "
        "h264:CRF, blur:SIGMA, noise:STD; and at most one codec-in-the-loop "
        "sequence degradation: a preset (web, dvd, divx, real) or "
        "codec:x264[,mpeg2,mpeg4,jpeg][:crf=18-38][:key=LO-HI...] "
        "(see training/README.md)",
    )
    b.add_argument(
        "--sequences",
        type=int,
        default=1,
        help="with a codec degradation or --frames: sequences per image "
        "(per run of video frames with --frames)",
    )
    b.add_argument(
        "--frames",
        type=int,
        default=0,
        help="sequence mode (for recurrent models): each sample is this many consecutive "
        "aligned LR/HR frames of one patch, from runs of video frames and from stills "
        "moved by smooth sub-pixel motion; 0: single patches",
    )
    b.add_argument(
        "--cut-rate",
        type=float,
        default=0.1,
        help="with --frames: share of still sequences that cut to another image",
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset")


def run(args: argparse.Namespace) -> int:
    """cut HR/LR patch pairs from videos and image folders

    Sample frames (skipping black, flat and duplicate video frames), cut random HR patches,
    make LR patches with MATLAB-compatible bicubic, optionally degrade them, and write
    safetensors shards + manifest.json.
    """
    from tqdm import tqdm

    from vidsr.training.dataset import DatasetConfig, build_dataset
    from vidsr.training.degrade import parse_specs

    codec, steps = parse_specs(args.degrade)
    config = from_args(DatasetConfig, args, degradations=steps, codec=codec)
    with tqdm(unit="patch", desc="vidsr dataset", file=sys.stderr) as bar:

        def progress(name: str, n: int) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(n)

        manifest = build_dataset(
            args.inputs, Path(args.out), config, overwrite=args.overwrite, progress=progress
        )
    used = sum(i["frames_used"] for i in manifest["inputs"])
    print(
        f"vidsr dataset: {manifest['count']} "
        f"{'sequences' if args.frames else 'patches'} from {used} frames/images in "
        f"{len(manifest['shards'])} shards -> {args.out}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    from vidsr.cli.train_cmd import standalone

    sys.exit(standalone(register, ["dataset", *sys.argv[1:]]))
