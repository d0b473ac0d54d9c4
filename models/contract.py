"""The contract every vidsr model declares, and the wrapper that enforces it.

A network on its own is a plain ``nn.Module``. :class:`SRModel` wraps it with what the
pipeline must know (scale, colour space, size multiple, half-precision support) and
guarantees the call convention: ``(N, C, H, W)`` float in ``[0, 1]`` in,
``(N, C, s*H, s*W)`` float in ``[0, 1]`` out, padding and unpadding itself.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidsr.models.entry import ColourSpace, Family, ModelEntry

__all__ = ["ColourSpace", "Family", "ModelEntry", "SRModel"]


class SRModel(nn.Module):
    """A super-resolution network plus its declared contract.

    Attributes:
        name: registry name (or file path for external models).
        family: ``baseline``, ``srcnn``, ``perceptual``, ``fast``, ``quality``, ``temporal``
            or ``external``.
        scale: integer upscaling factor.
        colour: ``"luma"``: the net sees the Y plane only, ``(N, 1, H, W)``, and the
            pipeline upscales chroma with bicubic; ``"rgb"``: the net sees ``(N, 3, H, W)`` RGB.
        multiple_of: input height and width are padded (reflect) up to a multiple of this.
        supports_half: whether fp16/bf16 autocast is safe for this network.
        receptive_radius: how many low-resolution pixels around a pixel influence its
            output; tiling uses it as the minimum overlap.
        self_ensemble: whether ``net`` averages over the eight flips and rotations of its
            input (set by ``load_model(..., self_ensemble=True)``).
        integer_path: whether the net can upscale 8-bit code planes itself, with no float
            conversion (:meth:`upsample_u8`). A net declares it with a class attribute
            ``integer_path = True`` and an ``upsample_u8(plane)`` method (the
            interpolation baselines do); wrappers such as the self-ensemble do not.
        stateful: whether the net is recurrent (a class attribute ``stateful = True`` and
            a ``step(frame, state)`` method, see :meth:`step`): it must see the frames of a
            clip in order, and its state is reset at every cut.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        family: Family,
        scale: int,
        colour: ColourSpace,
        multiple_of: int = 1,
        supports_half: bool = True,
        receptive_radius: int = 16,
        card: dict | None = None,
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if colour not in ("luma", "rgb"):
            raise ValueError(f"colour must be 'luma' or 'rgb', got {colour!r}")
        self.net = net
        self.name = name
        self.family = family
        self.scale = scale
        self.colour: ColourSpace = colour
        self.multiple_of = max(1, multiple_of)
        self.supports_half = supports_half
        self.receptive_radius = receptive_radius
        self.card = dict(card or {})
        self.self_ensemble = False

    @property
    def in_channels(self) -> int:
        return 1 if self.colour == "luma" else 3

    @property
    def integer_path(self) -> bool:
        return getattr(self.net, "integer_path", False) is True

    @property
    def stateful(self) -> bool:
        return getattr(self.net, "stateful", False) is True

    def step(
        self, x: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Upscale the next frame of a clip with a recurrent net.

        Args:
            x: ``(N, C, H, W)`` float in ``[0, 1]``, as for :meth:`forward`; row ``i`` of
                the batch continues row ``i`` of the previous call's (one clip or tile
                each).
            state: what the previous call returned for these rows, or ``None`` to reset
                (the first frame of a clip, or the first after a cut).

        Returns:
            ``(sr, state)``: ``(N, C, scale*H, scale*W)`` float in ``[0, 1]`` and the state
            to pass with the next frame (an opaque tensor, ``(N, *, H, W)``).

        Raises:
            ValueError: the net is not stateful, or ``x`` has the wrong shape.
        """
        if not self.stateful:
            raise ValueError(f"{self.name} is not a recurrent model")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.name} expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        y, state = self.net.step(x, state)
        return y.clamp_(0.0, 1.0), state

    def upsample_u8(self, plane: np.ndarray) -> np.ndarray:
        """Upscale one plane of 8-bit codes with the net's own integer path.

        Args:
            plane: ``(H, W)`` uint8 codes.

        Returns:
            ``(scale*H, scale*W)`` uint8 codes.

        Raises:
            ValueError: the net has no integer path (see ``integer_path``).
        """
        if not self.integer_path:
            raise ValueError(f"{self.name} has no 8-bit integer path")
        return self.net.upsample_u8(plane)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale a batch.

        Args:
            x: ``(N, C, H, W)`` float in ``[0, 1]``; C is 1 (Y, code value / 255) for luma
               models, 3 (RGB) for rgb models.

        Returns:
            ``(N, C, scale*H, scale*W)`` float in ``[0, 1]``, same dtype as the net's output.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.name} expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        pad_h = (-h) % self.multiple_of
        pad_w = (-w) % self.multiple_of
        if pad_h or pad_w:
            mode = "reflect" if h > pad_h and w > pad_w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.net(x)
        if pad_h or pad_w:
            y = y[..., : h * self.scale, : w * self.scale]
        return y.clamp_(0.0, 1.0)  # in place: y is a fresh tensor and 4K frames are large

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
