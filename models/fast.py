"""The fast real-time model: an FSRCNN-shaped network in low-resolution space with a
sub-pixel (pixel-shuffle) output and a global bicubic skip.

Why this shape:

* Everything runs at LR resolution (ESPCN/FSRCNN), so cost per output pixel falls as
  ``1 / s**2``. The FSRCNN hourglass (5x5 feature extraction, 1x1 shrink, a few thin 3x3
  mapping layers, 1x1 expand) keeps the mapping cheap.
* About 11k multiply-adds per LR pixel at x2 (d=32, s=16, m=4: the ``fast`` model),
  against about 21k for OpenCV's ESPCN (5x5x64, 3x3x32, 3x3xs^2) and 26k for FSRCNN, so it
  is cheaper per frame than ESPCN on the same CPU and keeps a live 320x240 stream real time
  on 2 cores. Training stopped helping that shape 0.02-0.33 dB short of FSRCNN's PSNR, so
  ``fast-hq`` widens it (d=48, s=16, m=6: about 18k / 20k / 24k multiply-adds per LR
  pixel at x2 / x3 / x4, against ESPCN's 21k / 23k / 25k and FSRCNN's 26k / 49k / 81k, its
  9x9 deconvolution running at HR).
* The network predicts only the residual over MATLAB bicubic (one ``PixelShuffle`` of
  ``s**2`` channels): it starts at bicubic quality and trains much faster than
  predicting the whole image, which is how it aims at FSRCNN's PSNR with less compute.

Input ``(N, 1, h, w)`` float in ``[0, 1]``, Y (code value / 255); output
``(N, 1, s*h, s*w)``, not clamped.
"""

from __future__ import annotations

import torch
from torch import nn

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.common import icnr_


class FastSR(nn.Module):
    """FSRCNN-style LR-space net with pixel shuffle and a bicubic global skip.

    Args:
        scale: upscaling factor (2, 3, 4, ...).
        d: feature width after the 5x5 extraction layer.
        s: bottleneck width of the mapping layers.
        m: number of 3x3 mapping layers.
        channels: image channels (1 for luma).
    """

    def __init__(
        self, scale: int, *, d: int = 32, s: int = 16, m: int = 4, channels: int = 1
    ) -> None:
        super().__init__()
        self.scale = scale
        self.upsample = PolyphaseUpsampler(scale, "bicubic")
        layers: list[nn.Module] = [
            nn.Conv2d(channels, d, 5, padding=2, padding_mode="replicate"),
            nn.PReLU(d),
            nn.Conv2d(d, s, 1),
            nn.PReLU(s),
        ]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1, padding_mode="replicate"), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(d, channels * scale * scale, 3, padding=1, padding_mode="replicate")
        self.shuffle = nn.PixelShuffle(scale)
        icnr_(self.tail.weight, scale)
        # A small residual at start: the model begins as (almost exactly) bicubic.
        with torch.no_grad():
            self.tail.weight.mul_(1e-2)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x) + self.shuffle(self.tail(self.body(x)))
