"""Geometric self-ensemble: run a network on the eight flips and rotations of its input
and average the answers (Timofte et al. 2016, "Seven ways to improve example-based single
image super resolution"; EDSR+ in Lim et al. 2017).

Super-resolution has no preferred orientation, but a trained network is never exactly
equivariant; averaging over the dihedral group cancels part of its orientation-dependent
error. It costs eight forward passes per frame and, for vidsr's quality model, gains
0.15 to 0.26 dB Y-PSNR on Set5/Set14 (README, "Models").
"""

from __future__ import annotations

import torch
from torch import nn

#: The eight elements of the dihedral group of the square: (quarter turns, mirror).
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, m) for k in range(4) for m in (False, True))


def _forward_transform(x: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    y = torch.rot90(x, turns, dims=(-2, -1)) if turns else x
    return y.flip(-1) if mirror else y


def _inverse_transform(y: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    if mirror:
        y = y.flip(-1)
    return torch.rot90(y, -turns, dims=(-2, -1)) if turns else y


class SelfEnsemble(nn.Module):
    """Wraps ``net`` so each call averages its outputs over the eight transforms.

    Input and output keep ``net``'s contract: ``(N, C, H, W)`` in, ``(N, C, s*H, s*W)``
    out, same dtype and range. Transposed orientations feed ``net`` a ``(W, H)`` image,
    so a size multiple must hold for both sides (``SRModel`` pads both). The eight passes
    run one after another, so peak memory is that of one pass plus one float32 sum.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        dtype = x.dtype
        for turns, mirror in TRANSFORMS:
            y = _inverse_transform(self.net(_forward_transform(x, turns, mirror)), turns, mirror)
            dtype = y.dtype
            total = y.to(torch.float32, copy=True) if total is None else total.add_(y)
        assert total is not None
        return total.div_(len(TRANSFORMS)).to(dtype)
