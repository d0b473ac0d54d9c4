"""The temporal model: a flow-free recurrent network (RLSP / RRN style) on luma.

At each step the net sees the current LR frame, the previous LR frame, its own previous
output folded back to LR size by space-to-depth, and a hidden state; a slim EDSR body
(the quality model's, so its weights warm-start this net) turns them into the SR frame and
the next hidden state. No optical flow: the body learns to use the neighbours where they
line up, at the quality model's cost plus one wider head conv and a hidden-state conv.

State: one tensor ``(N, 1 + hidden + s*s, h, w)`` float, same size as the LR frame:
the previous LR frame (channel 0), the hidden features, and the previous SR frame folded by
``pixel_unshuffle(s)``. ``None`` is the reset state (start of a clip, after a cut): the
previous frame is taken to be the current one, the hidden state is zero and the previous
output is the bicubic upscale of the current frame.

Input ``(N, 1, h, w)`` float in ``[0, 1]``, Y (code value / 255); output
``(N, 1, s*h, s*w)``, not clamped (the state keeps the clamped output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.common import ResBlock, ShuffleUpsampler


class RecurrentSR(nn.Module):
    """Recurrent slim EDSR: ``step(frame, state) -> (sr, state)``.

    The layers named like :class:`~vidsr.models.quality.QualitySR`'s (``head``, ``body``,
    ``up``, ``tail``) have the same shapes except ``head``, whose first input channel is
    the current frame: :meth:`load_single_frame` copies a quality net into this one, and
    with the recurrent inputs' weights at zero the two give the same output.

    Args:
        scale: upscaling factor.
        feats: feature width.
        blocks: residual blocks in the body.
        hidden: hidden-state channels carried from frame to frame.
    """

    stateful = True
    reconstruction = ("up", "tail")  # linear, folded for inference (models/folding.py)

    def __init__(self, scale: int, *, feats: int = 48, blocks: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.scale = scale
        self.hidden = hidden
        self.upsample = PolyphaseUpsampler(scale, "bicubic")
        self.head = nn.Conv2d(self.state_channels + 1, feats, 3, padding=1)
        self.body = nn.Sequential(
            *[ResBlock(feats) for _ in range(blocks)], nn.Conv2d(feats, feats, 3, padding=1)
        )
        self.up = ShuffleUpsampler(scale, feats)
        self.tail = nn.Conv2d(feats, 1, 3, padding=1)
        self.to_hidden = nn.Conv2d(feats, hidden, 3, padding=1)
        with torch.no_grad():
            self.tail.weight.mul_(1e-2)  # start close to bicubic, as the quality net
            self.head.weight[:, 1:].mul_(1e-2)  # and close to single-frame
        nn.init.zeros_(self.tail.bias)

    @property
    def state_channels(self) -> int:
        """Channels of the state tensor: previous frame, hidden, folded previous output."""
        return 1 + self.hidden + self.scale * self.scale

    def reset_state(self, frame: torch.Tensor) -> torch.Tensor:
        """The state at the start of a clip, for ``frame`` ``(N, 1, h, w)``."""
        n, _, h, w = frame.shape
        hidden = frame.new_zeros((n, self.hidden, h, w))
        folded = F.pixel_unshuffle(self.upsample(frame).clamp(0.0, 1.0), self.scale)
        return torch.cat([frame, hidden, folded], dim=1)

    def step(
        self, frame: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame.

        Args:
            frame: ``(N, 1, h, w)`` float Y in ``[0, 1]``.
            state: the previous step's state ``(N, state_channels, h, w)``, or ``None``
                to reset.

        Returns:
            ``(sr, state)``: ``(N, 1, s*h, s*w)`` (not clamped) and the next state.
        """
        if state is None:
            state = self.reset_state(frame)
        feat = self.head(torch.cat([frame, state], dim=1))
        feat = feat + self.body(feat)
        sr = self.upsample(frame) + self.tail(self.up(feat))
        hidden = torch.relu(self.to_hidden(feat))
        folded = F.pixel_unshuffle(sr.clamp(0.0, 1.0), self.scale)
        return sr, torch.cat([frame, hidden, folded], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A sequence ``(N, T, 1, h, w)`` from the reset state -> ``(N, T, 1, s*h, s*w)``;
        a single batch of frames ``(N, 1, h, w)`` is upscaled each from the reset state
        (one frame, no neighbours)."""
        if x.ndim == 4:
            return self.step(x, None)[0]
        state = None
        outputs = []
        for t in range(x.shape[1]):
            sr, state = self.step(x[:, t], state)
            outputs.append(sr)
        return torch.stack(outputs, dim=1)

    def load_single_frame(self, quality_state: dict[str, torch.Tensor]) -> None:
        """Warm-start from a :class:`~vidsr.models.quality.QualitySR` state dict of the
        same scale, width and depth: every layer copied, the head's current-frame input
        taken from the quality head and its recurrent inputs zeroed, so this net starts
        out equal to the quality model."""
        own = self.state_dict()
        for key, value in quality_state.items():
            if key == "head.weight":
                head = torch.zeros_like(own[key])
                head[:, :1] = value
                own[key] = head
            elif key in own and own[key].shape == value.shape:
                own[key] = value.clone()
            else:
                raise ValueError(f"{key}: not a layer of this net (or another shape)")
        self.load_state_dict(own)
