"""Per-shot colour matching end to end: a test model adds a colour cast, `vidsr upscale`
with `--color shot` removes it, and no shot's mapping leaks into the next."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_video, read_frames
from torch import nn

from vidsr.cli import main
from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import ModelEntry
from vidsr.models.registry import REGISTRY


class CastNet(nn.Module):
    """Bicubic upscale, then a strong per-channel gain and offset (a 'colour cast')."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.up = PolyphaseUpsampler(scale, "bicubic")
        self.register_buffer("gain", torch.tensor([0.8, 1.0, 1.15]).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.tensor([0.12, -0.05, 0.0]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x) * self.gain + self.offset


@pytest.fixture
def cast_model(monkeypatch: pytest.MonkeyPatch) -> str:
    entry = ModelEntry(
        name="test-cast",
        family="test",
        scales=(2,),
        colour="rgb",
        build=CastNet,
        description="test model with a colour cast",
        receptive_radius=3,
    )
    monkeypatch.setitem(REGISTRY, "test-cast", entry)
    return "test-cast"


def three_shot_frames(
    per_shot: int = 12, size: tuple[int, int] = (64, 48)
) -> tuple[list[np.ndarray], list[int]]:
    """Three shots with different scenes and palettes; returns frames and cut indices."""
    w, h = size
    rng = np.random.default_rng(1)
    frames, cuts = [], []
    palettes = [(200, 60, 40), (40, 160, 200), (90, 200, 70)]
    for shot, colour in enumerate(palettes):
        cuts.append(len(frames))
        texture = rng.integers(0, 60, (h, w + per_shot, 1))
        base = np.clip(texture + np.array(colour), 0, 255).astype(np.uint8)
        for i in range(per_shot):
            frames.append(np.ascontiguousarray(base[:, i : i + w]))  # a slow pan inside each shot
    return frames, cuts


def mean_rgb_error_per_shot(src: Path, out: Path, cuts: list[int]) -> list[np.ndarray]:
    a = [f.to_ndarray(format="rgb24").astype(float) for f in read_frames(src)]
    b = [f.to_ndarray(format="rgb24").astype(float) for f in read_frames(out)]
    errors = []
    bounds = cuts + [len(a)]
    for start, end in zip(bounds[:-1], bounds[1:]):
        diffs = []
        for x, y in zip(a[start:end], b[start:end]):
            small = y.reshape(x.shape[0], 2, x.shape[1], 2, 3).mean(axis=(1, 3))
            diffs.append((small - x).mean(axis=(0, 1)))
        errors.append(np.abs(np.mean(diffs, axis=0)))
    return errors


def test_shot_matching_removes_cast_without_leaking(tmp_path: Path, cast_model: str) -> None:
    frames, cuts = three_shot_frames()
    src = make_video(
        tmp_path / "shots.mkv", n=len(frames), codec="ffv1", pix_fmt="yuv444p", frames=frames
    )
    outputs = {}
    for mode in ("off", "shot"):
        out = tmp_path / f"out_{mode}.mkv"
        code = main(
            [
                "upscale",
                str(src),
                "-o",
                str(out),
                "--model",
                cast_model,
                "--scale",
                "2",
                "--device",
                "cpu",
                "--codec",
                "ffv1",
                "--pix-fmt",
                "yuv444p",
                "--color",
                mode,
            ]
        )
        assert code == 0
        outputs[mode] = mean_rgb_error_per_shot(src, out, cuts)
    for shot_off, shot_on in zip(outputs["off"], outputs["shot"]):
        assert shot_off.max() > 10  # the cast is there without matching
        assert shot_on.max() < 4  # and gone, in every shot, with it
