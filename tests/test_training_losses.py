"""Losses: pixel and TV basics; VGG feature loss with a random npz and the real one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidsr.errors import ModelError
from vidsr.training.losses import (
    ENV_VAR,
    VGGFeatureLoss,
    find_vgg_weights,
    pixel_loss,
    total_variation,
)

REAL_VGG = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "weights"
    / "vgg16_caffe_imagenet_conv1_1-conv3_3.npz"
)
SHAPES = {"conv1_1": (64, 3), "conv1_2": (64, 64), "conv2_1": (128, 64), "conv2_2": (128, 128)}


@pytest.fixture
def random_vgg(tmp_path: Path) -> Path:
    """A Caffe-layout npz with random conv1_1..conv2_2 weights (enough for relu1_2/2_2)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (cout, cin) in SHAPES.items():
        arrays[f"{name}.weight"] = rng.normal(0, 0.05, (cout, cin, 3, 3)).astype(np.float32)
        arrays[f"{name}.bias"] = np.zeros(cout, np.float32)
    path = tmp_path / "vgg.npz"
    np.savez(path, **arrays)
    return path


def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    return a, (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)


def test_pixel_and_tv() -> None:
    a, b = images()
    assert pixel_loss(a, a) == 0 and pixel_loss(a, b, "l1") > 0
    with pytest.raises(ValueError):
        pixel_loss(a, b, "huber")
    assert total_variation(torch.ones(1, 1, 8, 8)) == 0
    assert total_variation(a) > total_variation(a.mean(dim=(2, 3), keepdim=True).expand_as(a))


@pytest.mark.parametrize("layers", [("relu2_2",), ("relu1_2", "relu2_2")])
def test_vgg_loss_zero_for_identical_positive_otherwise(random_vgg: Path, layers) -> None:
    loss = VGGFeatureLoss(random_vgg, layers)
    a, b = images()
    assert float(loss(a, a)) == 0.0
    assert float(loss(a, b)) > 0.0
    assert float(loss(a[:, :1], b[:, :1])) > 0.0  # luma is repeated to 3 channels
    assert not any(p.requires_grad for p in loss.parameters())
    pred = b.clone().requires_grad_(True)
    loss(pred, a).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_vgg_missing_layer_weights(random_vgg: Path) -> None:
    with pytest.raises(ModelError, match="conv3_1"):
        VGGFeatureLoss(random_vgg, ("relu3_3",))


def test_vgg_weights_search_order(random_vgg: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(random_vgg))
    assert find_vgg_weights() == random_vgg
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ModelError) as err:
        find_vgg_weights()
    assert "--vgg-weights" in str(err.value) and ENV_VAR in str(err.value)
    with pytest.raises(ModelError, match="not found"):
        find_vgg_weights(tmp_path / "nope.npz")


@pytest.mark.skipif(not REAL_VGG.is_file(), reason=f"ImageNet VGG16 npz not present at {REAL_VGG}")
def test_real_vgg_weights() -> None:
    loss = VGGFeatureLoss(REAL_VGG, ("relu2_2", "relu3_3"))
    assert loss.convention == "caffe"
    a, b = images()
    assert float(loss(a, a)) == 0.0 and float(loss(a, b)) > 0.0
    # Caffe convention: BGR order, 0..255, mean subtracted.
    x = torch.zeros(1, 3, 4, 4)
    x[:, 0] = 1.0  # pure red
    norm = loss._normalise(x)
    assert torch.allclose(norm[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255.0 - 123.68]))
