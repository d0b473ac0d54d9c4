"""Shipped weights (models/weights/): each loads into its registry architecture, carries a
card for its scale, and beats bicubic on a small synthetic image (perceptual models only
have to run: they trade PSNR for texture by design). Every shipped model has x2, x3
and x4; the tutorial's SRCNN variant is an architecture users train themselves (its
loading is covered by tests/test_zoo_loading.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vidsr.engine.upscaler import available_scales, load_model
from vidsr.eval.evaluate import evaluate
from vidsr.models.registry import REGISTRY

SHIPPED = ("srcnn", "fast", "fast-hq", "fast-ecb", "quality", "perceptual")
CASES = [(name, scale) for name in SHIPPED for scale in (2, 3, 4)]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_family_has_scales_2_3_4(name: str) -> None:
    assert available_scales(REGISTRY[name]) == (2, 3, 4)


def _synthetic_hr(path: Path, size: int = 96) -> Path:
    """Anti-aliased shapes, lines and text drawn at 4x and reduced: edges like a photo's."""
    big = size * 4
    im = Image.new("RGB", (big, big), (200, 190, 170))
    d = ImageDraw.Draw(im)
    for i in range(7):
        d.ellipse(
            (20 + 40 * i, 30 + 17 * i, 90 + 40 * i, 100 + 17 * i),
            outline=(30 * i, 90, 250 - 30 * i),
            width=9,
        )
    for i in range(12):
        d.line((0, 12 * i * 3, big, 12 * i * 3 + 100), fill=(20, 40 + 15 * i, 60), width=5)
    d.rectangle((230, 230, 360, 360), fill=(240, 240, 230), outline=(10, 10, 10), width=8)
    d.text((40, 300), "vidsr 0123", fill=(0, 0, 0))
    yy, xx = np.mgrid[0:big, 0:big]
    shade = (np.sin(xx / 23.0) * np.cos(yy / 31.0) * 25).astype(np.int16)
    arr = np.clip(np.asarray(im, dtype=np.int16) + shade[:, :, None], 0, 255).astype(np.uint8)
    Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS).save(path)
    return path


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_shipped_weights_load_and_beat_bicubic(name: str, scale: int, tmp_path: Path) -> None:
    entry = REGISTRY[name]
    model = load_model(name, scale)
    assert model.card.get("scale", scale) == scale
    report = evaluate(model, [_synthetic_hr(tmp_path / "pattern.png")], device="cpu")
    assert np.isfinite(report.psnr)
    if entry.family != "perceptual":
        assert report.psnr > report.bicubic_psnr, (
            f"{name} x{scale}: {report.psnr:.2f} dB vs bicubic {report.bicubic_psnr:.2f} dB"
        )
