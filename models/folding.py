"""Exact inference-time folding of a linear sub-pixel reconstruction.

The quality and temporal nets end in ``ShuffleUpsampler`` (conv 3x3 -> ``PixelShuffle(2)``,
twice at x4; once, ``PixelShuffle(s)``, at x2 and x3) and a 3x3 tail conv, with no
activation anywhere in between. That chain is linear (affine, with the biases) in the
low-resolution features, and it commutes with shifts by one LR pixel, so it equals one
LR-space convolution to ``C * s**2`` channels followed by one ``PixelShuffle(s)``. Its
kernel is 5x5 at x2, x3 and x4; per LR pixel it costs (48 features, luma) 19k
multiply-adds at x4 instead of 422k (11k instead of 191k at x3, 5k instead of 85k at x2);
at x4 that was more than half the quality net's 775k. Training keeps the original layers (the
weights files hold them); :func:`fold_reconstruction` makes the folded copy that runs.

Borders: each original conv zero-pads at its own resolution, the folded one only at LR,
so the outputs of the outermost LR row and column on each side differ. :class:`FoldedTail`
recomputes those through the original layers on thin strips (``margin`` LR pixels), so the
folded net equals the original everywhere, to float rounding.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

# Probe size (LR pixels) for measuring the chain's impulse response: the response of a
# kernel up to 5x5 to an impulse at the centre stays clear of the probe's own borders,
# which the chain's zero padding changes (the outermost pixel on each side).
_PROBE = 9


class FoldedTail(nn.Module):
    """``tail(up(feat))`` as ``PixelShuffle(s)(conv(feat))``, with exact borders.

    ``(N, feats, h, w)`` float -> ``(N, C, s*h, s*w)``, the same tensor (to float rounding)
    as the original layers give; ``C`` is the tail's output channels.

    Args:
        up: the upsampler, linear (no activation), ``(N, feats, h, w) -> (N, feats, s*h, s*w)``.
        tail: the conv after it, ``feats -> C`` channels at HR.
        scale: the upsampler's factor ``s``.
    """

    def __init__(self, up: nn.Module, tail: nn.Conv2d, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.exact = nn.Sequential(up, tail)
        weight, bias = _fold(self.exact, tail.in_channels, scale)
        radius = weight.shape[-1] // 2
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1], padding=radius)
        device, dtype = tail.weight.device, tail.weight.dtype
        with torch.no_grad():
            self.conv.weight.copy_(weight.to(device, dtype))
            self.conv.bias.copy_(bias.to(device, dtype))
        self.conv.to(device)
        self.shuffle = nn.PixelShuffle(scale)
        # The LR rows / columns whose border outputs the strips recompute: the outermost
        # one, with the ``radius`` rows its folded kernel reaches.
        self.margin = radius + 1

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        h, w = feat.shape[-2:]
        m, s = self.margin, self.scale
        if h <= 2 * m or w <= 2 * m:
            return self.exact(feat)
        out = self.shuffle(self.conv(feat))
        out[..., :s, :] = self.exact(feat[..., :m, :])[..., :s, :]
        out[..., -s:, :] = self.exact(feat[..., -m:, :])[..., -s:, :]
        out[..., :, :s] = self.exact(feat[..., :, :m])[..., :, :s]
        out[..., :, -s:] = self.exact(feat[..., :, -m:])[..., :, -s:]
        return out


@torch.no_grad()
def _fold(chain: nn.Module, feats: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The LR conv kernel ``(C * s**2, feats, k, k)`` and bias ``(C * s**2,)`` equal to the
    linear ``chain`` followed by ``PixelUnshuffle(s)``, measured from its response to one
    impulse per input channel (in the probe's interior, where the chain's own zero padding
    does not reach). Float32 on the CPU: a float64 probe takes seconds (no fast float64
    convolution), and this runs at the start of every run.

    Raises:
        ValueError: the chain is not linear and shift-invariant per LR pixel (its response
            is not a small kernel).
    """
    net = copy.deepcopy(chain).to("cpu", torch.float32).eval()
    c = _PROBE // 2
    zero = torch.zeros(1, feats, _PROBE, _PROBE)
    offset = F.pixel_unshuffle(net(zero), scale)  # (1, C*s*s, P, P): the bias, inside
    probes = torch.zeros(feats, feats, _PROBE, _PROBE)
    probes[torch.arange(feats), torch.arange(feats), c, c] = 1.0
    response = F.pixel_unshuffle(net(probes), scale) - offset  # (feats, C*s*s, P, P)
    felt = response.abs().amax(dim=(0, 1))  # (P, P): how much an impulse is felt where
    reach = felt > 1e-6 * float(felt.max())
    rows, cols = reach.nonzero(as_tuple=True)
    radius = int(max((rows - c).abs().max(), (cols - c).abs().max()))
    if radius > c - 2:
        raise ValueError(f"the chain reaches {radius} LR pixels: not a small linear kernel")
    window = response[:, :, c - radius : c + radius + 1, c - radius : c + radius + 1]
    # conv2d correlates: out[p, i, j] = sum K[p, f, dy, dx] * in[f, i + dy - r, j + dx - r],
    # so the kernel is the impulse response flipped.
    weight = window.flip(-1, -2).permute(1, 0, 2, 3).contiguous()
    bias = offset[0, :, c, c]
    inner = offset[0, :, 2:-2, 2:-2]
    if (inner - bias[:, None, None]).abs().max() > 1e-5 * max(1.0, float(bias.abs().max())):
        raise ValueError("the chain's bias is not constant per sub-pixel: not foldable")
    # A linear check on a random input: the folded conv gives the chain's interior.
    check = torch.randn(1, feats, _PROBE, _PROBE)
    want = F.pixel_unshuffle(net(check), scale)[..., 2:-2, 2:-2]
    got = F.conv2d(check, weight, bias, padding=radius)[..., 2:-2, 2:-2]
    if (want - got).abs().max() > 1e-4 * max(1.0, float(want.abs().max())):
        raise ValueError("the chain is not linear: it cannot be folded into one conv")
    return weight, bias


def fold_reconstruction(net: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``net`` with every declared linear reconstruction folded (``net`` itself
    is left as it is): for inference only; the copy's ``state_dict`` is not the weights
    file's.

    A module declares one with a class attribute ``reconstruction = ("up", "tail")``: the
    names of a linear upsampler with a ``scale`` and the conv its ``forward`` applies
    directly after it (``self.tail(self.up(feat))``). In the copy ``up`` becomes the
    identity and ``tail`` a :class:`FoldedTail`, so the same ``forward`` runs the folded
    chain.

    Returns:
        ``(copy, folded)``: the copy and how many reconstructions it folded; ``net`` itself
        and 0 when nothing in it is foldable (no copy of, say, a large external model).
    """
    if not any(_foldable(m) for m in net.modules()):
        return net, 0
    folded = copy.deepcopy(net)
    count = 0
    for module in list(folded.modules()):
        if not _foldable(module):
            continue
        up_name, tail_name = type(module).reconstruction
        up, tail = getattr(module, up_name), getattr(module, tail_name)
        setattr(module, tail_name, FoldedTail(up, tail, up.scale))
        setattr(module, up_name, nn.Identity())
        count += 1
    return folded, count


def _foldable(module: nn.Module) -> bool:
    """Whether ``module`` declares a reconstruction that is not folded yet."""
    names = getattr(type(module), "reconstruction", None)
    return names is not None and not isinstance(getattr(module, names[1]), FoldedTail)
