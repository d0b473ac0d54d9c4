"""Training losses: pixel (MSE/L1), total variation, and a VGG16 feature loss.

All losses take ``(N, C, H, W)`` float tensors in ``[0, 1]``. The VGG loss needs RGB
(C=3); a luma batch (C=1) is repeated to three channels.

The VGG16 weights are ImageNet weights in the original Caffe convention (BGR, 0..255,
mean subtracted, no std division). They are read from a local ``.npz`` of OIHW conv
arrays named ``conv1_1.weight`` ... ``conv3_3.bias`` (given by argument or by the
``VIDSR_VGG16_WEIGHTS`` environment variable), or, failing that, from torchvision's cache
(``vgg16-397923af.pth``, whose own mean/std convention is then used). Nothing downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidsr.errors import ModelError

ENV_VAR = "VIDSR_VGG16_WEIGHTS"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_FILE = "vgg16-397923af.pth"
# VGG16 conv1_1..conv3_3; "M" is a 2x2 max-pool. torchvision features indices in comments.
_LAYERS = ("conv1_1", "conv1_2", "M", "conv2_1", "conv2_2", "M", "conv3_1", "conv3_2", "conv3_3")
_WIDTHS = {
    "conv1_1": (3, 64),
    "conv1_2": (64, 64),
    "conv2_1": (64, 128),
    "conv2_2": (128, 128),
    "conv3_1": (128, 256),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
}
_TV_INDEX = {
    "conv1_1": 0,
    "conv1_2": 2,
    "conv2_1": 5,
    "conv2_2": 7,
    "conv3_1": 10,
    "conv3_2": 12,
    "conv3_3": 14,
}
TAPS = {"relu1_2": "conv1_2", "relu2_2": "conv2_2", "relu3_3": "conv3_3"}


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean squared (``"mse"``) or absolute (``"l1"``) error, a scalar."""
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    raise ValueError(f"pixel loss must be 'mse' or 'l1', got {kind!r}")


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def find_vgg_weights(path: Path | str | None = None) -> Path:
    """Locate VGG16 weights: ``path``, then ``$VIDSR_VGG16_WEIGHTS``, then torchvision's cache.

    Raises:
        ModelError: nothing found; the message says how to provide the file.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"VGG16 weights file not found: {p}")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ModelError(f"{ENV_VAR}={env} does not name a file")
        return p
    hub = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if hub.is_file():
        return hub
    raise ModelError(
        "VGG16 weights for the perceptual loss were not found. Pass --vgg-weights FILE "
        f"(an .npz of Caffe-convention conv1_1..conv3_3 arrays, e.g. "
        f"shared/data/weights/vgg16_caffe_imagenet_conv1_1-conv3_3.npz), or set {ENV_VAR}=FILE, "
        f"or place torchvision's {TORCHVISION_FILE} in {hub.parent}."
    )


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Conv weights keyed ``conv1_1.weight`` etc., and the input convention name."""
    if path.suffix == ".npz":
        with np.load(path) as npz:
            state = {k: torch.from_numpy(np.array(npz[k], np.float32)) for k in npz.files}
        return state, "caffe"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for name, idx in _TV_INDEX.items():
        state[f"{name}.weight"] = raw[f"features.{idx}.weight"]
        state[f"{name}.bias"] = raw[f"features.{idx}.bias"]
    return state, "torchvision"


class VGGFeatureLoss(nn.Module):
    """Mean squared distance between VGG16 ReLU features of prediction and target.

    Args:
        weights: the weights file (see :func:`find_vgg_weights` for the search order).
        layers: feature taps among ``relu1_2``, ``relu2_2`` (default, Johnson et al.),
            ``relu3_3``; their losses are summed.

    The network is frozen (no gradients to its parameters) and kept in eval mode.
    """

    def __init__(
        self, weights: Path | str | None = None, layers: tuple[str, ...] = ("relu2_2",)
    ) -> None:
        super().__init__()
        unknown = [t for t in layers if t not in TAPS]
        if unknown or not layers:
            raise ValueError(f"VGG layers must be among {sorted(TAPS)}, got {layers}")
        self.path = find_vgg_weights(weights)
        state, self.convention = _load_state(self.path)
        self.taps = tuple(layers)
        deepest = max(_LAYERS.index(TAPS[t]) for t in layers)
        self.convs = nn.ModuleDict()
        for name in _LAYERS[: deepest + 1]:
            if name == "M":
                continue
            cin, cout = _WIDTHS[name]
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            try:
                conv.weight.data.copy_(state[f"{name}.weight"])
                conv.bias.data.copy_(state[f"{name}.bias"])
            except (KeyError, RuntimeError) as e:
                raise ModelError(f"{self.path}: bad or missing {name} weights: {e}") from e
            self.convs[name] = conv
        self.requires_grad_(False)
        if self.convention == "caffe":
            mean, std = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3)
        else:
            mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureLoss:
        return super().train(False)  # the loss network always stays in eval mode

    def _normalise(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.shape[1] == 1:
            rgb = rgb.repeat(1, 3, 1, 1)
        if self.convention == "caffe":  # RGB [0, 1] -> BGR [0, 255] minus the BGR mean
            return rgb[:, [2, 1, 0]] * 255.0 - self.mean
        return (rgb - self.mean) / self.std

    def features(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        """ReLU features at the requested taps for ``(N, 3|1, H, W)`` RGB/Y in [0, 1]."""
        x = self._normalise(rgb.float())
        out: dict[str, torch.Tensor] = {}
        wanted = {TAPS[t]: t for t in self.taps}
        for name in _LAYERS:
            if name == "M":
                x = F.max_pool2d(x, 2)
                continue
            if name not in self.convs:
                break
            x = F.relu(self.convs[name](x))
            if name in wanted:
                out[wanted[name]] = x
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.features(pred)
        with torch.no_grad():
            ft = self.features(target)
        return sum(F.mse_loss(fp[t], ft[t]) for t in self.taps)  # type: ignore[return-value]
