"""Validation during training: Y-PSNR (and SSIM when available) on a folder of HR images.

Protocol (as the SR papers and ``vidsr eval``): mod-crop the HR image to the scale,
make the LR image with MATLAB-compatible bicubic, upscale, compare MATLAB ``rgb2ycbcr``
luma with ``scale`` border pixels cropped, peak 255. If the models' evaluation module
``vidsr.metrics`` is installed its ``psnr_y``/``ssim_y`` are used; otherwise a local PSNR
(no SSIM) stands in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from vidsr.errors import InputError
from vidsr.resize import bicubic_downscale, modcrop
from vidsr.training.luma import rgb_u8_to_y

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class ValPair:
    """One validation image: ``hr`` ``(H, W, 3)`` uint8 RGB (mod-cropped), ``lr`` bicubic."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def load_pairs(folder: Path | str, scale: int, limit: int = 0) -> list[ValPair]:
    """Read HR images from ``folder`` (sorted) and make their LR versions.

    Raises:
        InputError: the folder is missing or holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"validation folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images in validation folder {root}")
    if limit:
        files = files[:limit]
    pairs = []
    for path in files:
        with Image.open(path) as img:
            hr = modcrop(np.asarray(img.convert("RGB")), scale)
        pairs.append(ValPair(path.stem, np.ascontiguousarray(hr), bicubic_downscale(
            np.ascontiguousarray(hr), scale)))
    return pairs


def _local_psnr_y(sr_y: np.ndarray, hr_y: np.ndarray, border: int) -> float:
    """PSNR (peak 255) of two ``(H, W)`` float Y planes in code values, border cropped."""
    if border:
        sr_y, hr_y = sr_y[border:-border, border:-border], hr_y[border:-border, border:-border]
    mse = float(np.mean((sr_y.astype(np.float64) - hr_y.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _metrics():
    """``(psnr_fn, ssim_fn or None)`` on Y planes in code values."""
    try:
        from vidsr import metrics  # written by the evaluation module; optional here
    except ImportError:
        return _local_psnr_y, None
    psnr = getattr(metrics, "psnr_y_plane", None)
    ssim = getattr(metrics, "ssim_y_plane", None)
    return (psnr or _local_psnr_y), ssim


@torch.no_grad()
def upscale_y(net: nn.Module, lr: np.ndarray, colour: str, device: torch.device) -> np.ndarray:
    """Run ``net`` on one ``(h, w, 3)`` uint8 RGB LR image; returns the SR Y plane.

    Luma nets get MATLAB Y / 255 and return Y; RGB nets get RGB in [0, 1] and their
    output is rounded to uint8 RGB before taking Y. Returns ``(H, W)`` float64 code values.
    """
    if colour == "luma":
        x = torch.from_numpy(rgb_u8_to_y(lr) / 255.0)[None, None].float().to(device)
        y = net(x).clamp(0, 1)[0, 0].double().cpu().numpy() * 255.0
        return np.rint(y)
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255.0).to(device)
    rgb = net(x).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    return rgb_u8_to_y(np.rint(rgb * 255.0).astype(np.uint8)).astype(np.float64)


def evaluate(net: nn.Module, pairs: list[ValPair], colour: str, scale: int,
             device: torch.device) -> dict:
    """Average Y-PSNR (and SSIM if available) of ``net`` over ``pairs``.

    Returns ``{"psnr": float, "ssim": float | None, "per_image": {name: psnr}}``.
    """
    psnr_fn, ssim_fn = _metrics()
    was_training = net.training
    net.eval()
    psnrs, ssims, per_image = [], [], {}
    try:
        for pair in pairs:
            sr_y = upscale_y(net, pair.lr, colour, device)
            hr_y = rgb_u8_to_y(pair.hr).astype(np.float64)
            p = float(psnr_fn(sr_y, hr_y, scale))
            psnrs.append(p)
            per_image[pair.name] = round(p, 3)
            if ssim_fn is not None:
                ssims.append(float(ssim_fn(sr_y, hr_y, scale)))
    finally:
        net.train(was_training)
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)) if ssims else None,
        "per_image": per_image,
    }
