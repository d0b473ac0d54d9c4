"""Validation during training: Y-PSNR/SSIM on a folder of HR images, by the eval protocol.

The protocol is ``vidsr eval``'s (:mod:`vidsr.eval.evaluate`, :mod:`vidsr.eval.metrics`): mod-crop
the HR image, make the LR image with MATLAB-compatible bicubic, upscale, compare MATLAB
``rgb2ycbcr`` luma (grey level for grayscale images) with ``scale`` border pixels cropped.
The HR/LR pairs are prepared once so that periodic validation only runs the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidsr.eval.evaluate import iter_hr_images, upscale_y
from vidsr.eval.metrics import luma, psnr, shave, ssim
from vidsr.eval.resize import bicubic_downscale, modcrop
from vidsr.models.contract import SRModel


@dataclass(frozen=True)
class ValPair:
    """One validation image: ``hr_y`` the scored HR plane (border cropped, code values),
    ``lr`` the ``(h, w, 3)`` (or ``(h, w)`` grey) uint8 bicubic LR input."""

    name: str
    hr_y: np.ndarray
    lr: np.ndarray


def load_pairs(folder: Path | str, scale: int, limit: int = 0) -> list[ValPair]:
    """Read HR images from ``folder`` (sorted by name) and make their LR versions.

    Raises:
        InputError: the folder is missing, empty, or holds an unreadable image.
    """
    pairs = []
    for name, hr in iter_hr_images(Path(folder)):
        hr = np.ascontiguousarray(modcrop(hr, scale))
        pairs.append(ValPair(Path(name).stem, shave(luma(hr), scale), bicubic_downscale(hr, scale)))
        if limit and len(pairs) >= limit:
            break
    return pairs


def evaluate(
    net: nn.Module,
    pairs: list[ValPair],
    colour: str,
    scale: int,
    device: torch.device,
    with_ssim: bool = True,
) -> dict:
    """Average Y-PSNR and SSIM of the bare network ``net`` over ``pairs``.

    Args:
        net: maps ``(N, C, h, w)`` float in [0, 1] (C=1 Y/255 for ``"luma"``, 3 RGB for
            ``"rgb"``) to ``(N, C, s*h, s*w)``.

    Returns:
        ``{"psnr": dB, "ssim": float | None, "per_image": {name: dB}}``.
    """
    model = SRModel(net, name="training", family="test", scale=scale, colour=colour)  # type: ignore[arg-type]
    was_training = net.training
    model.eval()
    psnrs, ssims, per_image = [], [], {}
    try:
        for pair in pairs:
            sr_y = shave(upscale_y(model, pair.lr, device), scale)
            psnrs.append(psnr(sr_y, pair.hr_y))
            per_image[pair.name] = round(psnrs[-1], 3)
            if with_ssim:
                ssims.append(ssim(sr_y, pair.hr_y))
    finally:
        net.train(was_training)
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)) if ssims else None,
        "per_image": per_image,
    }
