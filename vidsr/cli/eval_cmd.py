"""``vidsr eval``: score a model on HR images or videos under the standard SR protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vidsr.cli.options import add_command, add_device_option

if TYPE_CHECKING:  # imported when the command runs, not when the CLI starts
    import numpy as np
    import torch


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "eval", run)
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="folder of HR images, frame folder, image file or video file",
    )
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="registry name (see `vidsr models`) or a .pth/.safetensors file",
    )
    p.add_argument("--scale", "-s", type=int, required=True, help="upscaling factor")
    p.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the model over the 8 flips/rotations of each image "
        "(8x the compute; the EDSR+ convention)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--summary", action="store_true", help="only per-clip and mean rows")
    p.add_argument(
        "--clip",
        action="store_true",
        help="score every PATH as one clip in frame (name) order: a recurrent model "
        "carries its state, and the temporal error is reported (default: video files "
        "are clips, image folders are not)",
    )
    add_device_option(p, "auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--vgg",
        "--vgg-weights",
        dest="vgg",
        nargs="?",
        const="",
        default=None,
        metavar="WEIGHTS",
        help="also report the VGG16 feature distance (MSE of ReLU features, "
        "lower is better) of model and bicubic; WEIGHTS is a Caffe .npz or "
        "torchvision .pth (default: $VIDSR_VGG16_WEIGHTS, then torchvision's "
        "cache)",
    )
    p.add_argument(
        "--vgg-layers",
        default="relu2_2",
        help="comma list of relu1_2, relu2_2, relu3_3 (default relu2_2)",
    )


def run(args: argparse.Namespace) -> int:
    """measure Y-PSNR/SSIM of a model against bicubic on HR images or videos

    Mod-crop each HR image (or every frame of a video), make the LR image with
    MATLAB-compatible bicubic, upscale it, and report PSNR and SSIM on the Y channel (BT.601
    studio range) with SCALE border pixels cropped, per image and averaged, beside the bicubic
    baseline.
    """
    from vidsr.device import resolve_device
    from vidsr.engine.upscaler import load_model
    from vidsr.eval.evaluate import evaluate, format_table

    device = resolve_device(args.device)
    model = load_model(args.model, args.scale, self_ensemble=args.self_ensemble)
    distance = None
    if args.vgg is not None:
        layers = tuple(t.strip() for t in args.vgg_layers.split(",") if t.strip())
        distance = VGGDistance(args.vgg or None, layers, device)
    report = evaluate(
        model,
        [Path(p) for p in args.paths],
        device=device,
        feature_distance=distance,
        clips=True if args.clip else None,
    )
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(report, per_image=not args.summary))
    return 0


class VGGDistance:
    """``(sr, hr) -> float``: summed MSE of VGG16 ReLU features (Johnson et al.'s feature
    reconstruction loss) of two ``(H, W, 3)`` uint8 RGB images, computed on ``device``.
    The loss network comes from :mod:`vidsr.training.losses`, as for training."""

    def __init__(self, weights: str | None, layers: tuple[str, ...], device: torch.device) -> None:
        from vidsr.errors import OptionError
        from vidsr.training.losses import VGGFeatureLoss

        try:
            self.loss = VGGFeatureLoss(weights, layers).to(device)
        except ValueError as e:
            raise OptionError(str(e)) from e
        self.device = device
        self.description = f"VGG16 {'+'.join(layers)} feature MSE ({self.loss.path.name})"

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        import torch

        return torch.tensor(image, device=self.device).permute(2, 0, 1)[None].float() / 255.0

    def __call__(self, sr: np.ndarray, hr: np.ndarray) -> float:
        import torch

        with torch.inference_mode():
            return float(self.loss(self._tensor(sr), self._tensor(hr)))
