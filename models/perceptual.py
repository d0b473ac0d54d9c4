"""Johnson et al. 2016 image transformation network for super-resolution.

As in the paper's SR network: a 9x9 input conv on the LR image, residual blocks at LR
resolution, learned upsampling by ``log2(s)`` factor-2 stages (one factor-3 stage for
x3), and a 9x9 output conv. The paper's fractionally-strided convolutions are replaced by
conv + ``PixelShuffle`` with ICNR initialisation, which is free of checkerboard
artefacts. Batch norm is left out (as EDSR showed, it only hurts SR, and it misbehaves
with the small batches of CPU training).

Output, two formulations:

* ``skip=True`` (the registry default): the 9x9 output conv predicts a residual added to
  MATLAB bicubic of the input. Colours and low frequencies come for free, so the VGG
  feature loss only has to add texture and edges: it trains in a fraction of the steps
  and avoids the colour shifts a from-scratch output shows early in training. The
  output is not clamped (:class:`~vidsr.models.contract.SRModel` clamps to ``[0, 1]``).
* ``skip=False``: the paper's scaled tanh, ``(tanh(z) + 1) / 2``, always in ``[0, 1]``.

Trained with a VGG16 relu2_2 feature loss (training/), so it is not judged by PSNR.

Input ``(N, 3, h, w)`` float in ``[0, 1]``, RGB; output ``(N, 3, s*h, s*w)``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.common import ResBlock, ShuffleUpsampler


class PerceptualSR(nn.Module):
    """Johnson-style transformation network.

    Args:
        scale: upscaling factor (2, 3, 4, ...).
        feats: feature width (64 in the paper).
        blocks: residual blocks (4 in the paper's SR network).
        skip: add the output to bicubic (default) instead of the paper's tanh output.
    """

    def __init__(self, scale: int, *, feats: int = 64, blocks: int = 4, skip: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.skip = skip
        self.head = nn.Sequential(
            nn.Conv2d(3, feats, 9, padding=4, padding_mode="replicate"), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*[ResBlock(feats) for _ in range(blocks)])
        self.up = ShuffleUpsampler(scale, feats, act=nn.ReLU)
        self.tail = nn.Conv2d(feats, 3, 9, padding=4, padding_mode="replicate")
        if skip:
            self.upsample = PolyphaseUpsampler(scale, "bicubic")
            with torch.no_grad():  # start close to bicubic
                self.tail.weight.mul_(1e-2)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.head(x * 2.0 - 1.0))
        out = self.tail(self.up(feat))
        if self.skip:
            return self.upsample(x) + out
        return (torch.tanh(out) + 1.0) * 0.5
