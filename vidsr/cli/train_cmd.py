"""``vidsr train``: train a registry architecture on a shard dataset, optionally export it."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from vidsr.cli import DefaultsFormatter
from vidsr.cli.options import add_command, add_device_option, from_args
from vidsr.config import EXPORT_DIR, PRECISIONS
from vidsr.errors import OptionError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "train",
        run,
        help="train a model on a dataset built by `vidsr dataset build`",
        formatter_class=DefaultsFormatter,
        description="Train a registry architecture on patch shards; checkpoints go to --out, "
        f"`--export NAME` writes {EXPORT_DIR}/NAME_xS.safetensors and its "
        f"card (use it with `vidsr upscale --model "
        f"{EXPORT_DIR}/NAME_xS.safetensors`).",
    )
    p.add_argument("--arch", required=True, help="registry architecture (see `vidsr models`)")
    p.add_argument("--scale", type=int, required=True, help="upscaling factor")
    p.add_argument("--data", required=True, help="dataset folder (manifest.json + shards)")
    p.add_argument("--out", default=None, help="run folder; None: runs/ARCH_xS")
    p.add_argument("--steps", type=int, default=10_000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="patch pairs per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (Adam)")
    p.add_argument(
        "--schedule",
        choices=("cosine", "step"),
        default="cosine",
        help="learning-rate schedule over --steps (or --max-minutes)",
    )
    p.add_argument(
        "--loss",
        choices=("mse", "l1", "perceptual"),
        default="mse",
        help="training loss; perceptual: pixel MSE + VGG16 features",
    )
    p.add_argument("--pixel-weight", type=float, default=1.0, help="perceptual: MSE weight")
    p.add_argument("--feature-weight", type=float, default=1.0, help="perceptual: VGG weight")
    p.add_argument("--tv-weight", type=float, default=0.0, help="total-variation weight")
    p.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG16 .npz (Caffe convention) or torchvision .pth; "
        "None: $VIDSR_VGG16_WEIGHTS, then torchvision's cache",
    )
    p.add_argument("--vgg-layers", default="relu2_2", help="comma list of relu1_2,relu2_2,relu3_3")
    p.add_argument(
        "--val",
        default=None,
        help="folder of HR images for validation Y-PSNR (a sequence set built with "
        "--frames for recurrent nets; None: no validation)",
    )
    p.add_argument(
        "--val-limit", type=int, default=0, help="validate on the first N images (0: all)"
    )
    p.add_argument("--val-every", type=int, default=500, help="validate every N steps")
    p.add_argument(
        "--skip-frames",
        type=int,
        default=0,
        help="recurrent nets: leave the first N frames of each sequence out of the loss",
    )
    p.add_argument("--log-every", type=int, default=50, help="print a log line every N steps")
    p.add_argument("--ckpt-every", type=int, default=500, help="checkpoint every N steps")
    p.add_argument(
        "--max-minutes", type=float, default=0.0, help="stop after this wall time (0: no limit)"
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/ckpt.pt")
    p.add_argument(
        "--init",
        default=None,
        metavar="WEIGHTS",
        help="warm start from a .safetensors/.pt whose matching tensors fit "
        "(e.g. the x2 model for an x3/x4 run); a recurrent net given a single-frame "
        "net (temporal from quality_xS) starts equal to it",
    )
    add_device_option(p, "auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: fp16 AMP on CUDA, fp32 on CPU; bf16: bfloat16 autocast "
        "(about 2.3x faster on CPUs with AVX512-BF16/AMX)",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="validate, keep and export an exponential moving average of the "
        "weights with this per-step decay (e.g. 0.999); 0: off",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and patch order")
    p.add_argument(
        "--export",
        metavar="NAME",
        default=None,
        help="write NAME_xS.safetensors + NAME_xS.json into --export-dir after training",
    )
    p.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: export RUN_DIR's best (else latest) checkpoint",
    )
    p.add_argument(
        "--export-dir",
        default=EXPORT_DIR,
        help="folder the export goes to (relative to the working directory)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --export replace an existing weights file and card",
    )
    p.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="measure the exported model on HR folder DIR (repeatable)",
    )


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed (``vidsr train ...``), for the model card.

    Taken from ``sys.argv`` when it holds this command, else rebuilt from ``args`` (when
    called from Python, e.g. by tests).
    """
    argv = sys.argv[1:]
    if "--arch" in argv and "--data" in argv:
        if "train" not in argv:  # run as ``python -m vidsr.cli.train_cmd``
            argv = ["train", *argv]
        return "vidsr " + " ".join(shlex.quote(a) for a in argv)
    parts = ["vidsr", "train"]
    for key, value in vars(args).items():
        if key in ("func", "command", "verbose") or value in (None, False, []):
            continue
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, list) else [value]
        for v in values:
            parts += [flag] if v is True else [flag, shlex.quote(str(v))]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vidsr.training.export import export_paths
    from vidsr.training.train import TrainConfig, load_trained, resolve_entry, train

    report = {}
    for item in args.report:
        label, sep, folder = item.partition("=")
        if not sep or not folder:
            raise OptionError(f"--report wants LABEL=DIR, got {item!r}")
        report[label] = folder
    cfg = from_args(
        TrainConfig,
        args,
        out=args.out or f"runs/{args.arch}_x{args.scale}",
        vgg_layers=tuple(t.strip() for t in args.vgg_layers.split(",") if t.strip()),
        command=_command_line(args),
    )
    entry = resolve_entry(cfg.arch)
    if args.export:  # refuse before hours of training, not after
        export_paths(Path(args.export_dir), args.export, cfg.scale, overwrite=args.overwrite)
    elif args.overwrite:
        raise OptionError("--overwrite applies to --export NAME")

    def on_status(line: str) -> None:
        tqdm.write(f"vidsr train: {line}")
        sys.stdout.flush()

    def on_log(record: dict) -> None:
        fields = " ".join(
            f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in record.items()
            if v is not None
        )
        tqdm.write(f"vidsr train: {fields}")
        sys.stdout.flush()

    if args.export_only:
        if not args.export:
            raise OptionError("--export-only needs --export NAME")
        net, info = load_trained(Path(cfg.out), entry, cfg.scale)
        info["notes"] = f"exported from {cfg.out} by: {cfg.command}"
    else:
        on_status(
            f"{'resuming' if cfg.resume else 'training'} {cfg.arch} x{cfg.scale} "
            f"for {cfg.steps} steps; run folder {cfg.out}"
        )
        result = train(cfg, entry, on_log=on_log, on_status=on_status)
        print(
            f"vidsr train: done at step {result.step} in {result.wall_s:.0f} s on "
            f"{result.device}"
            + (f", best val Y-PSNR {result.best_psnr:.3f} dB" if result.best_psnr else "")
        )
        net, info = (
            result.net,
            {
                "config": asdict(cfg),
                "steps": result.step,
                "wall_s": result.wall_s,
                "device": result.device,
                "command": cfg.command,
            },
        )
    if args.export:
        from vidsr.training.export import export_model

        weights, card = export_model(
            net,
            entry,
            scale=cfg.scale,
            name=args.export,
            out_dir=Path(args.export_dir),
            train_info=info,
            report=report,
            overwrite=args.overwrite,
        )
        print(f"vidsr train: wrote {weights} and {card} (use it with --model {weights})")
    return 0


def standalone(register_fn, argv: list[str] | None = None) -> int:
    """Run one command module on its own (``python -m vidsr.cli.train_cmd ...``).

    Same error convention as ``vidsr``: a :class:`VidsrError` prints one line, exit 1.
    Useful for long background runs that should not depend on the other commands.
    """
    import logging
    import os

    from vidsr.errors import VidsrError

    parser = argparse.ArgumentParser(prog="vidsr")
    register_fn(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="vidsr: %(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except VidsrError as e:
        if os.environ.get("VIDSR_DEBUG") == "1":
            raise
        print(f"vidsr: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vidsr: stopped (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone(register, ["train", *sys.argv[1:]]))
