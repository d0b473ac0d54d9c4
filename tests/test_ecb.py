"""The re-parameterisable fast net: the fold is exact, the shipped form loads the fold."""

from __future__ import annotations

import pytest
import torch

from vidsr.models.ecb import ECBNet, ECBNetPlain, EdgeBlock
from vidsr.models.registry import REGISTRY


def _perturb(net: torch.nn.Module, seed: int) -> None:
    """Move every parameter off its initial value, so each branch matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))


def test_edge_block_folds_into_one_conv_exactly_at_the_borders_too() -> None:
    block = EdgeBlock(3, 5)
    _perturb(block, 0)
    x = torch.rand(2, 3, 9, 11)
    weight, bias = block.fold()
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    folded = torch.nn.functional.conv2d(padded, weight, bias)
    assert weight.shape == (5, 3, 3, 3)
    assert (block.branches(x) - folded).abs().max() < 1e-5
    assert (block(x) - folded).abs().max() < 1e-5


def test_training_through_the_fold_gives_the_branch_sum_gradients() -> None:
    torch.manual_seed(0)
    net = ECBNet(2, c=6, m=1)
    _perturb(net, 2)
    x, target = torch.rand(2, 1, 7, 9), torch.rand(2, 1, 14, 18)
    grads = []
    for run in (net, net.reference):
        net.zero_grad()
        ((run(x) - target) ** 2).mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for fast, slow in zip(*grads):
        assert torch.allclose(fast, slow, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_folded_net_equals_the_training_net(scale: int) -> None:
    torch.manual_seed(scale)
    net = ECBNet(scale, c=8, m=2)
    _perturb(net, scale)
    x = torch.rand(2, 1, 13, 17)
    plain = net.fold()
    assert isinstance(plain, ECBNetPlain)
    out, ref = plain(x), net.reference(x)
    assert out.shape == (2, 1, 13 * scale, 17 * scale)
    assert (out - ref).abs().max() < 1e-4
    assert (net(x) - ref).abs().max() < 1e-4


def test_the_branches_change_the_function() -> None:
    """A fold that dropped a branch would still pass if the branches were all zero."""
    block = EdgeBlock(2, 2)
    _perturb(block, 1)
    x = torch.rand(1, 2, 6, 6)
    plain = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
        block.conv3.weight,
        block.conv3.bias,
    )
    assert (block.branches(x) - plain).abs().max() > 1e-2


def test_registry_ships_the_folded_form() -> None:
    entry = REGISTRY["fast-ecb"]
    trained = entry.build_trainable(2)
    assert isinstance(trained, ECBNet)
    shipped = entry.build(2)
    shipped.load_state_dict(trained.fold().state_dict())  # strict: names and shapes match
    x = torch.rand(1, 1, 8, 8)
    assert (shipped(x) - trained(x)).abs().max() < 1e-4
    n_plain = sum(p.numel() for p in shipped.parameters())
    assert n_plain < sum(p.numel() for p in trained.parameters())


def test_a_fresh_net_starts_near_bicubic() -> None:
    net = ECBNet(2, c=8, m=2)
    x = torch.rand(1, 1, 10, 10)
    assert (net(x) - net.upsample(x)).abs().max() < 0.05


@pytest.mark.parametrize("scale", [2, 4])
def test_a_folded_net_warm_starts_the_training_net(tmp_path, scale: int) -> None:
    """`vidsr train --init fast-ecb_x2.safetensors` (the shipped, folded form) starts the
    branch net at the folded net's function; at another scale the body transfers and the
    tail keeps its fresh start."""
    from safetensors.torch import save_file

    from vidsr.training.train import warm_start

    torch.manual_seed(0)
    source = ECBNet(2, c=8, m=2)
    _perturb(source, 5)
    plain = source.fold()
    path = tmp_path / "folded.safetensors"
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(path))
    net = ECBNet(scale, c=8, m=2)
    copied = warm_start(net, path)
    assert "convs.0.weight" in copied and ("tail.weight" in copied) == (scale == 2)
    x = torch.rand(2, 1, 11, 13)
    if scale == 2:
        assert (net(x) - plain(x)).abs().max() < 1e-5
        assert (net.reference(x) - plain(x)).abs().max() < 1e-5
    else:
        body = [block.fold()[0] for block in net.blocks]
        assert all(torch.equal(w, c.weight) for w, c in zip(body, plain.convs))
        assert net.tail.conv3.weight.abs().max() < 0.05  # the fresh, near-bicubic tail


def test_a_folded_net_of_another_width_is_one_clear_error(tmp_path) -> None:
    from safetensors.torch import save_file

    from vidsr.errors import ModelError
    from vidsr.training.train import warm_start

    path = tmp_path / "narrow.safetensors"
    plain = ECBNet(2, c=8, m=2).fold()
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(path))
    with pytest.raises(ModelError, match="--init .*convs.0.weight"):
        warm_start(ECBNet(2, c=12, m=2), path)
    state = {k: v for k, v in plain.state_dict().items() if k != "convs.1.bias"}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ModelError, match="convs.1.bias"):
        warm_start(ECBNet(2, c=8, m=2), path)
