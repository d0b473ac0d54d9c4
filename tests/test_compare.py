"""``vidsr compare`` and RGB reconstruction for luma models."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidsr.cli import compare_cmd
from vidsr.engine.upscaler import load_model
from vidsr.errors import OptionError, OutputExistsError
from vidsr.eval.compare import GAP, LABEL_HEIGHT, comparison_panels, render_panels
from vidsr.eval.evaluate import upscale_rgb
from vidsr.eval.resize import bicubic_downscale
from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import SRModel


def _hr(h: int = 42, w: int = 50) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(xx / 4.0)
    g = 128 + 90 * np.cos((xx + yy) / 5.0)
    b = (xx * 4 + yy * 3) % 256
    return np.stack([r, g, b], axis=2).clip(0, 255).astype(np.uint8)


def test_luma_model_rgb_output_is_close_to_rgb_bicubic() -> None:
    """Y from the luma model + bicubic chroma ~ bicubic on RGB (same linear filter)."""
    lr = bicubic_downscale(_hr(40, 48), 2)
    luma = upscale_rgb(load_model("bicubic", 2), lr)
    rgb = upscale_rgb(
        SRModel(PolyphaseUpsampler(2), name="b", family="test", scale=2, colour="rgb"), lr
    )
    assert luma.shape == rgb.shape == (40, 48, 3) and luma.dtype == np.uint8
    assert np.abs(luma.astype(int) - rgb.astype(int)).max() <= 3


def test_panels_and_layout() -> None:
    hr = _hr()
    models = [load_model("bicubic", 3), load_model("lanczos", 3)]
    panels = comparison_panels(hr, models, crop=(3, 6, 30, 24))
    assert [p.label for p in panels] == ["bicubic x3", "lanczos x3", "ground truth"]
    assert all(p.image.shape == (24, 30, 3) for p in panels)
    np.testing.assert_array_equal(panels[-1].image, hr[6:30, 3:33])
    assert panels[-1].psnr is None and all(p.psnr > 15 for p in panels[:-1])
    out = render_panels(panels, zoom=2)
    assert out.shape == (48 + LABEL_HEIGHT, 3 * 60 + 2 * GAP, 3)
    np.testing.assert_array_equal(out[0:2, 0:2], np.broadcast_to(panels[0].image[0, 0], (2, 2, 3)))


def test_bad_requests() -> None:
    with pytest.raises(OptionError, match="does not fit"):
        comparison_panels(_hr(), [load_model("bicubic", 2)], crop=(40, 0, 30, 20))
    with pytest.raises(OptionError, match="one scale"):
        comparison_panels(_hr(), [load_model("bicubic", 2), load_model("bicubic", 3)])


def test_cli_writes_the_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "hr.png"
    Image.fromarray(_hr()).save(src)
    out = tmp_path / "cmp.png"
    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers())
    argv = [
        "compare",
        str(src),
        "-m",
        "bicubic,lanczos",
        "-s",
        "2",
        "-o",
        str(out),
        "--device",
        "cpu",
    ]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert Image.open(out).size == (3 * 50 + 2 * GAP, 42 + LABEL_HEIGHT)
    assert "lanczos x2" in capsys.readouterr().out
    with pytest.raises(OutputExistsError):
        args.func(parser.parse_args(argv))
