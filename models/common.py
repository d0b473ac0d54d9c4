"""Building blocks shared by the LR-space networks: ICNR-initialised pixel-shuffle
upsamplers and plain residual blocks. ``nn.Module`` definitions only, no IO."""

from __future__ import annotations

import torch
from torch import nn


def icnr_(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017) of a conv feeding ``PixelShuffle(factor)``.

    Initialises one kernel per output feature with Kaiming-normal and repeats it over the
    ``factor**2`` sub-pixel positions, so at start the conv + shuffle equals a conv
    followed by nearest-neighbour upsampling: no checkerboard artefacts.

    Args:
        weight: ``(C * factor**2, C_in, k, k)`` conv weight, modified in place.
        factor: the pixel-shuffle factor.
    """
    out_ch = weight.shape[0]
    r2 = factor * factor
    if out_ch % r2:
        raise ValueError(f"{out_ch} output channels is not a multiple of {r2}")
    sub = torch.empty(out_ch // r2, *weight.shape[1:], dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_normal_(sub, nonlinearity="relu")
    # PixelShuffle takes channel c*r2 + k to sub-pixel k of output channel c.
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(r2, dim=0))
    return weight


def shuffle_factors(scale: int) -> list[int]:
    """Pixel-shuffle stages for an integer scale: 4 -> [2, 2], 8 -> [2, 2, 2], 3 -> [3]."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    return [scale]


class ShuffleUpsampler(nn.Sequential):
    """conv 3x3 (``feats -> feats * r**2``, ICNR) + ``PixelShuffle(r)`` per stage,
    with an optional activation after each stage. ``(N, feats, h, w) -> (N, feats, s*h, s*w)``."""

    def __init__(self, scale: int, feats: int, act: type[nn.Module] | None = None) -> None:
        mods: list[nn.Module] = []
        for r in shuffle_factors(scale):
            conv = nn.Conv2d(feats, feats * r * r, 3, padding=1)
            icnr_(conv.weight, r)
            nn.init.zeros_(conv.bias)
            mods += [conv, nn.PixelShuffle(r)]
            if act is not None:
                mods.append(act())
        super().__init__(*mods)
        self.scale = scale


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip and residual scaling (EDSR, no batch norm)."""

    def __init__(self, feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(feats, feats, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(feats, feats, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x))) * self.res_scale
