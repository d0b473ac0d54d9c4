"""The precision a model runs in: fp32, fp16/bf16 autocast on CUDA, bf16 convolutions on CPUs.

On CUDA, reduced precision is ``torch.autocast`` (fp16 by default where the model allows).
On the CPU, autocast is slower than fp32 for vidsr's nets (it casts every weight at every
call, and bf16 element-wise kernels are slow), but oneDNN's bf16 convolutions are 2-10x
faster than fp32 ones on CPUs with native bf16 (AMX, AVX-512 BF16). So the CPU path is
surgical: :func:`with_bf16_convolutions` replaces each ``Conv2d`` that has at least
:data:`MIN_IN_CHANNELS` input channels by a :class:`BF16Conv2d`, which rounds its input to
bf16, convolves with bf16 weights (fp32 accumulation inside oneDNN) and hands fp32 on. The
first convolution (1 or 3 input channels: no speed to gain) and everything between the
convolutions (activations, pixel shuffle, the bicubic skip, residual sums) stay fp32, so
the only error is the bf16 rounding of each convolution's input and weights: measured on
Set5 x2 with the ``fast`` model, outputs within one 8-bit code of fp32's and Y-PSNR within
0.01 dB (``benchmarks/cpu_precision.py`` measures every model).
"""

from __future__ import annotations

import copy
import logging
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidsr.config import PRECISIONS, Precision
from vidsr.errors import OptionError

# What a model runs in: plain fp32, fp16 or bf16 (autocast on CUDA, convolutions on CPUs).
Resolved = Literal["fp32", "fp16", "bf16"]
MIN_IN_CHANNELS = 8  # narrower convolutions (the first, on 1-3 image channels) stay fp32
log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX-512 BF16), where bf16
    convolutions beat fp32 ones; elsewhere oneDNN emulates them, slower than fp32."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def resolve_precision(
    device: torch.device, supports_half: bool, precision: Precision = "auto"
) -> Resolved:
    """What ``precision`` (``--precision``) means for a model on ``device``.

    - ``auto``: on CUDA fp16, on a CPU with native bf16 (:func:`cpu_has_native_bf16`)
      bf16, when the model allows reduced precision (``supports_half``); else fp32.
    - ``bf16``: bf16 on any device (slower than fp32 on CPUs without native bf16).
    - ``fp32``: fp32.

    Raises:
        OptionError: an unknown ``precision``, or ``bf16`` for a model that does not
            allow reduced precision.
    """
    if precision not in PRECISIONS:
        raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return "fp32"
    if precision == "bf16":
        if not supports_half:
            raise OptionError("--precision bf16: this model runs in fp32 only")
        return "bf16"
    if not supports_half:
        return "fp32"
    if device.type == "cuda":
        return "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def autocast_dtype_for(device: torch.device, resolved: Resolved) -> torch.dtype | None:
    """The autocast dtype of a forward pass (:func:`vidsr.device.inference_context`):
    fp16/bf16 on CUDA; ``None`` on the CPU (its bf16 is in the convolutions) and in fp32."""
    if device.type != "cuda" or resolved == "fp32":
        return None
    return torch.float16 if resolved == "fp16" else torch.bfloat16


def describe(device: torch.device, resolved: Resolved) -> str:
    """How the model computed, for the summary line: ``fp32``, ``fp16 autocast`` /
    ``bf16 autocast`` (CUDA) or ``bf16 convolutions`` (CPU)."""
    if resolved == "fp32":
        return "fp32"
    return f"{resolved} autocast" if device.type == "cuda" else f"{resolved} convolutions"


class BF16Conv2d(nn.Module):
    """A ``Conv2d`` computed in bf16: input ``(N, C, H, W)`` float32 (any memory format)
    rounded to bf16, padded as the original (zeros, replicate, reflect or circular),
    convolved with the bf16 weights and bias, and returned as float32.

    Args:
        conv: the convolution to replace (its weights are copied, rounded to bf16).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if isinstance(conv.padding, str):
            raise ValueError("BF16Conv2d needs numeric padding, not padding='same'/'valid'")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        self.padding_mode = conv.padding_mode
        self.padding = conv.padding
        self._pad = conv._reversed_padding_repeated_twice
        weight = conv.weight.detach().to(torch.bfloat16)
        self.weight = nn.Parameter(weight, requires_grad=False)
        bias = None if conv.bias is None else conv.bias.detach().to(torch.bfloat16)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.bfloat16)
        padding = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pad, mode=self.padding_mode)
            padding = (0, 0)
        y = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return y.to(dtype)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bf16, padding_mode={self.padding_mode}"


def with_bf16_convolutions(net: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``net`` whose ``Conv2d`` layers of at least :data:`MIN_IN_CHANNELS`
    input channels are :class:`BF16Conv2d` (``net`` itself is left as it is).

    Returns:
        ``(copy, converted)``: the converted copy and how many convolutions it converted
        (0: the copy computes exactly as ``net``).
    """
    converted = copy.deepcopy(net)
    count = 0
    for module in list(converted.modules()):
        for name, child in list(module.named_children()):
            if (
                type(child) is nn.Conv2d
                and child.in_channels >= MIN_IN_CHANNELS
                and not isinstance(child.padding, str)
            ):
                setattr(module, name, BF16Conv2d(child))
                count += 1
    return converted, count
