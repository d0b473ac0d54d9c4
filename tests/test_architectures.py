"""Every registered architecture at every scale: shapes, range, receptive radius, ICNR."""

from __future__ import annotations

import pytest
import torch

from vidsr.engine.upscaler import wrap_entry
from vidsr.models.common import ShuffleUpsampler, icnr_
from vidsr.models.fast import FastSR
from vidsr.models.perceptual import PerceptualSR
from vidsr.models.quality import QualitySR
from vidsr.models.registry import REGISTRY
from vidsr.models.srcnn import SRCNN, SRCNNTutorial

LEARNED = [name for name, e in REGISTRY.items() if e.family != "baseline"]
CASES = [(name, s) for name, e in REGISTRY.items() for s in e.scales]


def _channels(name: str) -> int:
    return 1 if REGISTRY[name].colour == "luma" else 3


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_output_size_odd_input(name: str, scale: int) -> None:
    torch.manual_seed(0)
    net = REGISTRY[name].build(scale).eval()
    c = _channels(name)
    with torch.inference_mode():
        y = net(torch.rand(2, c, 13, 7))
    assert y.shape == (2, c, 13 * scale, 7 * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_srmodel_wrapper_contract(name: str, scale: int) -> None:
    e = REGISTRY[name]
    model = wrap_entry(e, e.build(scale), scale)
    with torch.inference_mode():
        y = model(torch.rand(1, model.in_channels, 9, 11))
    assert y.shape == (1, model.in_channels, 9 * scale, 11 * scale)
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_registry_rows_declare_weights_per_scale() -> None:
    for name in LEARNED:
        e = REGISTRY[name]
        assert e.scales == (2, 3, 4)
        assert e.weights == {s: f"{name}_x{s}.safetensors" for s in e.scales}
        assert e.family in ("srcnn", "fast", "quality", "perceptual", "temporal")


def _narrow(name: str, scale: int) -> torch.nn.Module:
    """Same depth as the registry net (same receptive field), fewer channels: cheap."""
    if name == "quality":
        return QualitySR(scale, feats=4)
    if name == "perceptual":
        return PerceptualSR(scale, feats=4)
    return REGISTRY[name].build(scale)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_receptive_radius_is_an_upper_bound(name: str) -> None:
    """The centre output pixel does not change when every LR pixel farther than the
    declared radius changes."""
    e = REGISTRY[name]
    for scale in e.scales:
        torch.manual_seed(0)
        net = _narrow(name, scale).double().eval()
        r = e.receptive_radius
        size = 2 * r + 9
        c = size // 2
        x = torch.rand(1, _channels(name), size, size, dtype=torch.float64)
        far = torch.ones(size, size, dtype=torch.bool)
        far[c - r : c + r + 1, c - r : c + r + 1] = False
        x2 = torch.where(far, torch.rand_like(x), x)
        with torch.inference_mode():
            a = net(x)[..., c * scale : (c + 1) * scale, c * scale : (c + 1) * scale]
            b = net(x2)[..., c * scale : (c + 1) * scale, c * scale : (c + 1) * scale]
        assert torch.equal(a, b), f"{name} x{scale}: reaches beyond {r} LR pixels"
        # and the radius is not vacuous: pixels inside it matter
        x3 = torch.where(far, x, torch.rand_like(x))
        with torch.inference_mode():
            d = net(x3)[..., c * scale : (c + 1) * scale, c * scale : (c + 1) * scale]
        assert not torch.equal(a, d)


def test_residual_models_start_near_bicubic() -> None:
    from vidsr.models.baselines import bicubic_upsample

    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 10)
    for net in (SRCNN(2), FastSR(3), QualitySR(4, feats=8, blocks=2)):
        with torch.inference_mode():
            diff = (net(x) - bicubic_upsample(x, net.scale)).abs().max()
        assert float(diff) < 0.05


def test_srcnn_plain_formulation_and_tutorial_range() -> None:
    torch.manual_seed(0)
    assert SRCNN(2, residual=False)(torch.rand(1, 1, 5, 5)).shape == (1, 1, 10, 10)
    with torch.inference_mode():
        y = SRCNNTutorial(3)(torch.rand(1, 3, 5, 6))
    assert y.shape == (1, 3, 15, 18) and float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("factor", [2, 3])
def test_icnr_shuffle_is_nearest_neighbour_at_init(factor: int) -> None:
    """ICNR: every sub-pixel of a shuffled output block equals the others (no checkerboard)."""
    torch.manual_seed(0)
    up = ShuffleUpsampler(factor, 4)
    with torch.inference_mode():
        y = up(torch.rand(1, 4, 6, 5))
    blocks = y.unfold(2, factor, factor).unfold(3, factor, factor)  # (1, 4, 6, 5, f, f)
    assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)


def test_icnr_rejects_bad_channel_count() -> None:
    with pytest.raises(ValueError):
        icnr_(torch.empty(5, 4, 3, 3), 2)
