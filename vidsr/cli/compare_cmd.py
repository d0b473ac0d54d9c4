"""``vidsr compare``: a side-by-side image of several models on one HR picture."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidsr.cli.options import add_command, add_device_option


def _crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--crop wants X,Y,W,H in HR pixels, got {text!r}") from e
    return x, y, w, h


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "compare", run)
    p.add_argument("image", help="HR image (PNG, BMP, JPEG...)")
    p.add_argument(
        "--models",
        "-m",
        default="bicubic,srcnn,perceptual",
        help="comma list of registry names or weights files",
    )
    p.add_argument("--scale", "-s", type=int, required=True, help="upscaling factor")
    p.add_argument("--out", "-o", required=True, help="output image (.png)")
    p.add_argument(
        "--crop", type=_crop, default=None, metavar="X,Y,W,H", help="region of the HR image to show"
    )
    p.add_argument("--zoom", type=int, default=1, help="enlarge panels (nearest neighbour)")
    add_device_option(p, "auto, cpu, cuda or cuda:N")
    p.add_argument("--overwrite", "-y", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    """side-by-side image of models against the ground truth

    Downscale an HR image with MATLAB-compatible bicubic, upscale it with each model, and
    save the results next to the ground truth, each labelled with its Y-PSNR on the region
    shown.
    """
    from PIL import Image

    from vidsr.device import resolve_device
    from vidsr.engine.upscaler import load_model
    from vidsr.errors import OutputExistsError
    from vidsr.eval.compare import comparison_panels, render_panels
    from vidsr.eval.evaluate import iter_hr_images

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    device = resolve_device(args.device)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    models = [load_model(name, args.scale) for name in names]
    _, hr = next(iter_hr_images(Path(args.image)))  # a video: its first frame
    panels = comparison_panels(hr, models, crop=args.crop, device=device)
    Image.fromarray(render_panels(panels, zoom=args.zoom)).save(out)
    for panel in panels:
        figure = "" if panel.psnr is None else f"  {panel.psnr:.2f} dB (Y)"
        print(f"{panel.label}{figure}")
    print(f"wrote {out}")
    return 0
