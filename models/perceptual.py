"""Johnson et al. 2016 image transformation network for super-resolution.

As in the paper's SR network: a 9x9 input conv on the LR image, residual blocks at LR
resolution, learned upsampling by ``log2(s)`` factor-2 stages (one factor-3 stage for
x3), and a 9x9 output conv with a scaled tanh. The paper's fractionally-strided
convolutions are replaced by conv + ``PixelShuffle`` with ICNR initialisation, which is
free of checkerboard artefacts. Batch norm is left out (as EDSR showed, it only hurts
SR, and it misbehaves with the small batches of CPU training).

Trained with a VGG16 relu2_2 feature loss (training/), so it is not judged by PSNR.

Input ``(N, 3, h, w)`` float in ``[0, 1]``, RGB; output ``(N, 3, s*h, s*w)`` in
``[0, 1]``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidsr.models.common import ResBlock, ShuffleUpsampler


class PerceptualSR(nn.Module):
    """Johnson-style transformation network.

    Args:
        scale: upscaling factor (2, 3, 4, ...).
        feats: feature width (64 in the paper).
        blocks: residual blocks (4 in the paper's SR network).
    """

    def __init__(self, scale: int, *, feats: int = 64, blocks: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(
            nn.Conv2d(3, feats, 9, padding=4, padding_mode="replicate"), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*[ResBlock(feats) for _ in range(blocks)])
        self.up = ShuffleUpsampler(scale, feats, act=nn.ReLU)
        self.tail = nn.Conv2d(feats, 3, 9, padding=4, padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.head(x * 2.0 - 1.0))
        return (torch.tanh(self.tail(self.up(feat))) + 1.0) * 0.5
