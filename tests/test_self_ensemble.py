"""x8 geometric self-ensemble (``--self-ensemble``): the transforms are undone exactly,
the result is orientation-equivariant, and upscale/eval pass the choice through."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_video, read_frames, run_cli
from PIL import Image
from torch import nn

from vidsr.cli import eval_cmd
from vidsr.engine.upscaler import load_model
from vidsr.models.ensemble import TRANSFORMS, SelfEnsemble, _forward_transform


class _ShiftedShuffle(nn.Module):
    """A deliberately orientation-dependent x3 network: a random asymmetric 3x3 conv
    into pixel shuffle, plus a horizontal ramp."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 9, 3, padding=1)
        self.shuffle = nn.PixelShuffle(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.conv(x))
        return y + torch.linspace(0, 1, y.shape[-1])


def test_equivariant_network_is_unchanged() -> None:
    """Nearest-neighbour upscaling commutes with every flip and rotation, so averaging
    over them must give back exactly its own output (a wrong inverse would not)."""
    net = nn.Upsample(scale_factor=2, mode="nearest")
    x = torch.rand(2, 1, 5, 7)
    torch.testing.assert_close(SelfEnsemble(net)(x), net(x), rtol=0, atol=1e-6)


def test_output_is_equivariant_even_when_the_network_is_not() -> None:
    net = _ShiftedShuffle().eval()
    ensemble = SelfEnsemble(net)
    x = torch.rand(1, 1, 6, 10)  # not square: transposed orientations see 10x6
    with torch.no_grad():
        out = ensemble(x)
        assert out.shape == (1, 1, 18, 30)
        for turns, mirror in TRANSFORMS:
            moved = ensemble(_forward_transform(x, turns, mirror))
            torch.testing.assert_close(
                moved, _forward_transform(out, turns, mirror), atol=1e-5, rtol=0
            )
        # The plain network is not equivariant; the check above would catch a no-op.
        assert not torch.allclose(net(x.flip(-1)), net(x).flip(-1), atol=1e-3)


def test_keeps_the_networks_dtype() -> None:
    net = nn.Upsample(scale_factor=2, mode="nearest")
    x = torch.rand(1, 1, 4, 4).to(torch.bfloat16)
    assert SelfEnsemble(net)(x).dtype == torch.bfloat16


def test_load_model_wraps_shipped_weights() -> None:
    plain = load_model("fast", 2)
    ensembled = load_model("fast", 2, self_ensemble=True)
    assert not plain.self_ensemble and ensembled.self_ensemble
    yy, xx = torch.meshgrid(torch.arange(13.0), torch.arange(17.0), indexing="ij")
    x = (0.5 + 0.4 * torch.sin(xx / 2.0 + yy / 3.0))[None, None]  # odd sizes: padded
    with torch.no_grad():
        a, b = plain(x), ensembled(x)
    assert a.shape == b.shape == (1, 1, 26, 34)
    difference = (a - b).abs()
    assert 0 < difference.mean() < 0.02  # a different, nearby answer


def _eval_args(folder: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cmd.register(parser.add_subparsers())
    return parser.parse_args(
        [
            "eval",
            str(folder),
            "--model",
            "quality",
            "--scale",
            "2",
            "--device",
            "cpu",
            "--json",
            *extra,
        ]
    )


def test_eval_reports_self_ensemble(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yy, xx = np.mgrid[0:48, 0:48]
    rings = 128 + 120 * np.sin((xx - 20.0) ** 2 / 40.0 + (yy - 26.0) ** 2 / 30.0)
    Image.fromarray(np.repeat(rings[..., None], 3, axis=2).astype(np.uint8)).save(
        tmp_path / "r.png"
    )
    reports = []
    for extra in ((), ("--self-ensemble",)):
        args = _eval_args(tmp_path, *extra)
        assert args.func(args) == 0
        reports.append(json.loads(capsys.readouterr().out))
    plain, ensembled = reports
    assert not plain["self_ensemble"] and ensembled["self_ensemble"]
    assert ensembled["psnr"] != plain["psnr"]
    assert ensembled["psnr"] > ensembled["bicubic_psnr"]
    assert ensembled["bicubic_psnr"] == plain["bicubic_psnr"]  # the baseline is never ensembled


@pytest.mark.slow
def test_upscale_cli_option(tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", n=3)
    out = tmp_path / "clip_se.mp4"
    result = run_cli(
        "upscale",
        str(src),
        "-o",
        str(out),
        "--scale",
        "2",
        "--model",
        "fast",
        "--device",
        "cpu",
        "--self-ensemble",
    )
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (128, 96)
