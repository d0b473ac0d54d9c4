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
from vidsr.training.shards import SequenceDataset


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


@torch.no_grad()
def evaluate_sequences(
    net: nn.Module, data: SequenceDataset, device: torch.device, batch: int = 8
) -> dict:
    """Mean Y-PSNR of a recurrent net over every frame of every sequence in ``data``
    (no augmentation), each sequence run from the reset state in frame order.

    ``net`` maps ``(N, T, 1, p, p)`` Y / 255 to ``(N, T, 1, P, P)``; the output is clamped
    and rounded to 8-bit codes, the HR Y is rounded too, and ``scale`` border pixels are
    cropped, as in the image protocol. Returns ``{"psnr": dB, "ssim": None, "per_image":
    {"frame_t": dB}}`` (the mean over sequences at each frame index, which shows how much
    the state adds after the first frame).
    """
    s = data.scale
    was_training = net.training
    net.eval()
    per_frame: list[list[float]] = []
    try:
        for start in range(0, len(data), batch):
            seqs = [data.sequence(i) for i in range(start, min(len(data), start + batch))]
            lr = data.to_tensor(np.stack([q[0] for q in seqs])).to(device)
            hr = data.to_tensor(np.stack([q[1] for q in seqs]))
            sr = net(lr).float().clamp(0.0, 1.0).cpu()
            sr_y = (sr[:, :, 0, s:-s, s:-s] * 255.0).round().numpy()
            hr_y = (hr[:, :, 0, s:-s, s:-s] * 255.0).round().numpy()
            for a, b in zip(sr_y, hr_y):
                per_frame.append([psnr(fa, fb) for fa, fb in zip(a, b)])
    finally:
        net.train(was_training)
    table = np.asarray(per_frame)
    return {
        "psnr": float(table.mean()),
        "ssim": None,
        "per_image": {f"frame_{t}": round(float(v), 3) for t, v in enumerate(table.mean(0))},
    }
