"""The folded sub-pixel reconstruction (models/folding.py) computes what the layers it
replaces compute, borders included, and the pipeline runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vidsr.colour.convert import YuvFormat
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.processor import FrameProcessor, ProcessorOptions
from vidsr.engine.upscaler import wrap_entry
from vidsr.models.common import ShuffleUpsampler
from vidsr.models.folding import FoldedTail, fold_reconstruction
from vidsr.models.quality import QualitySR
from vidsr.models.registry import REGISTRY
from vidsr.models.temporal import RecurrentSR

FMT = YuvFormat(1, False, 8)


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with every parameter drawn at random (the tails start near zero otherwise,
    which would hide a wrong fold)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return net.eval()


SHAPES = [(1, 1, 13, 17), (2, 1, 9, 7), (1, 1, 32, 21), (1, 1, 7, 40), (1, 1, 3, 4)]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_folded_quality_net_equals_the_original(scale: int) -> None:
    net = randomised(QualitySR(scale, feats=16, blocks=2))
    folded, count = fold_reconstruction(net)
    assert count == 1 and isinstance(folded.tail, FoldedTail)
    assert folded.tail.conv.kernel_size == (5, 5)
    for shape in SHAPES:
        x = torch.rand(shape)
        with torch.no_grad():
            want, got = net(x), folded(x)
        assert got.shape == want.shape == (shape[0], 1, shape[2] * scale, shape[3] * scale)
        # every pixel, the outermost rows and columns (recomputed on strips) included
        assert float((got - want).abs().max()) < 1e-4, shape


@pytest.mark.parametrize("scale", [2, 4])
def test_folded_temporal_net_steps_like_the_original(scale: int) -> None:
    net = randomised(RecurrentSR(scale, feats=16, blocks=2, hidden=4), seed=1)
    folded, count = fold_reconstruction(net)
    assert count == 1
    frames = torch.rand(4, 2, 1, 15, 18)
    state_a = state_b = None
    with torch.no_grad():
        for x in frames:
            a, state_a = net.step(x, state_a)
            b, state_b = folded.step(x, state_b)
            # float rounding only (relative: random weights give outputs of a few units,
            # and the state carries each step's rounding into the next)
            assert float((a - b).abs().max()) < 1e-4 * float(a.abs().max())
            assert float((state_a - state_b).abs().max()) < 1e-4 * float(state_a.abs().max())


def test_the_fold_leaves_the_net_and_its_weights_alone() -> None:
    net = randomised(QualitySR(2, feats=8, blocks=1))
    keys = list(net.state_dict())
    folded, _ = fold_reconstruction(net)
    assert list(net.state_dict()) == keys and isinstance(net.up, ShuffleUpsampler)
    assert folded is not net
    again, count = fold_reconstruction(folded)  # already folded: nothing more to do
    assert count == 0 and again is folded
    plain = nn.Sequential(nn.Conv2d(1, 4, 3))  # nothing to fold: the net itself, no copy
    assert fold_reconstruction(plain) == (plain, 0)


def test_a_chain_with_an_activation_is_refused() -> None:
    up = ShuffleUpsampler(2, 8, act=nn.ReLU)  # the perceptual net's kind: not linear
    tail = nn.Conv2d(8, 3, 3, padding=1)
    randomised(up)
    with pytest.raises(ValueError, match="not linear"):
        FoldedTail(up, tail, 2)


def test_the_pipeline_runs_the_folded_net_and_nothing_else_changes() -> None:
    formats = PlaneFormats(FMT, FMT, "yuv420p")
    cpu = torch.device("cpu")
    for name, folds in (("quality", 1), ("temporal", 1), ("fast", 0), ("perceptual", 0)):
        entry = REGISTRY[name]
        model = wrap_entry(entry, entry.build(2), 2, {})
        processor = FrameProcessor(model, cpu, formats, ProcessorOptions(precision="fp32"))
        try:
            assert processor.folded == folds, name
            # the caller's model is not replaced by the folded copy
            assert not any(isinstance(m, FoldedTail) for m in model.modules())
        finally:
            processor.close()


def test_the_folding_benchmark_runs_end_to_end_on_a_tiny_frame() -> None:
    """A smoke test: the figures come from the real run (README)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "folding.py"
    args = ["--size", "40x24", "--frames", "1", "--tile", "16", "--threads", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--models", "quality@2,temporal@4,fast@2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=script.parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if "@" in line}
    assert set(rows) == {"quality@2", "temporal@4", "fast@2"}
    assert rows["fast@2"][1:] == ["nothing", "to", "fold"]
    assert float(rows["quality@2"][-1]) < 1e-4 and float(rows["temporal@4"][-1]) < 1e-4
