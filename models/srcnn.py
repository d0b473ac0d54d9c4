"""SRCNN (Dong et al. 2014) and the deeper RGB variant from the tutorial vidsr grew from.

Both networks work in high-resolution space: they bicubic-upsample the low-resolution
input themselves (MATLAB kernel, :func:`~vidsr.models.baselines.bicubic_upsample`) and
then refine it with same-padded convolutions, so their contract is the same as every
other vidsr model: LR ``(N, C, h, w)`` float in ``[0, 1]`` in, ``(N, C, s*h, s*w)`` out.
"""

from __future__ import annotations

import torch
from torch import nn

from vidsr.models.baselines import PolyphaseUpsampler


class SRCNN(nn.Module):
    """The 9-5-5 SRCNN: patch extraction (9x9, 64), non-linear mapping (5x5, 32),
    reconstruction (5x5, 1), ReLU between, on the bicubic-upsampled Y plane.

    The paper's 9-1-5 base model maps with a 1x1 conv; 9-5-5 is its best variant
    (Set5 x2 36.66 dB). Convolutions are same-padded (replicate), so the output has the
    size of the bicubic image instead of shrinking by 16 pixels.

    ``residual=True`` (the registry default) adds the network output to the bicubic image,
    i.e. the convs predict the missing detail (the VDSR trick). The layers and parameter
    count are exactly the paper's; only the formulation differs, and it trains an order
    of magnitude faster. ``residual=False`` gives the paper's formulation.

    Input ``(N, 1, h, w)`` float in ``[0, 1]``, Y (code value / 255); output
    ``(N, 1, s*h, s*w)``, not clamped.
    """

    def __init__(self, scale: int, *, channels: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.residual = residual
        self.upsample = PolyphaseUpsampler(scale, "bicubic")
        self.body = nn.Sequential(
            nn.Conv2d(channels, 64, 9, padding=4, padding_mode="replicate"),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 32, 5, padding=2, padding_mode="replicate"),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, channels, 5, padding=2, padding_mode="replicate"),
        )
        if residual:
            # Start as plain bicubic: the last layer predicts a zero residual.
            nn.init.normal_(self.body[-1].weight, std=1e-3)
            nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        out = self.body(up)
        return up + out if self.residual else out


class SRCNNTutorial(nn.Module):
    """The tutorial's variant: RGB, seven 3x3 conv layers of 32 filters, LeakyReLU after
    all but the last, tanh output mapped from ``[-1, 1]`` to ``[0, 1]``; trained with
    pixel MSE on the bicubic-upsampled image (the tutorial's "DeconvNet" at stride 1).

    Input ``(N, 3, h, w)`` float in ``[0, 1]``, RGB; output ``(N, 3, s*h, s*w)`` in
    ``[0, 1]``.
    """

    def __init__(
        self, scale: int, *, layers: int = 7, filters: int = 32, slope: float = 0.2
    ) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"layers must be >= 2, got {layers}")
        self.scale = scale
        self.upsample = PolyphaseUpsampler(scale, "bicubic")
        mods: list[nn.Module] = []
        c_in = 3
        for _ in range(layers - 1):
            mods += [
                nn.Conv2d(c_in, filters, 3, padding=1, padding_mode="replicate"),
                nn.LeakyReLU(slope, inplace=True),
            ]
            c_in = filters
        mods.append(nn.Conv2d(c_in, 3, 3, padding=1, padding_mode="replicate"))
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        # The tutorial feeds and predicts images in [-1, 1] (tanh range).
        return (torch.tanh(self.body(up * 2.0 - 1.0)) + 1.0) * 0.5
