"""Reduced-precision inference (vidsr.engine.precision): bf16 convolutions on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_video, read_frames, smooth_image, upscale_main
from torch import nn

from vidsr.colour.convert import YuvFormat
from vidsr.engine import precision
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.precision import BF16Conv2d, describe, resolve_precision, with_bf16_convolutions
from vidsr.engine.processor import FrameProcessor, ProcessorOptions
from vidsr.engine.upscaler import load_model
from vidsr.errors import OptionError
from vidsr.models.fast import FastSR

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect"])
def test_bf16_conv_matches_the_conv_to_bf16_rounding(mode: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 3, padding=1, padding_mode=mode)
    x = torch.rand(2, 16, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = conv(x)
        got = BF16Conv2d(conv)(x)
    assert got.dtype == torch.float32 and got.shape == want.shape
    error = (got - want).abs().max().item()
    assert 0 < error < 2e-2 * want.abs().max().item()  # it did round, and only that much


def test_conversion_copies_and_keeps_the_narrow_first_conv() -> None:
    net = FastSR(2)
    converted, count = with_bf16_convolutions(net)
    wide = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.in_channels >= 8]
    assert count == len(wide) == 7  # 1x1 shrink, four 3x3, 1x1 expand, the tail
    assert type(converted.body[0]) is nn.Conv2d  # 1 input channel: stays fp32
    assert isinstance(converted.tail, BF16Conv2d)
    assert all(type(m) is nn.Conv2d for m in wide)  # the original is untouched
    assert with_bf16_convolutions(converted)[1] == 0  # nothing left to convert


def test_resolve_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision(CPU, True) == "bf16"
    assert resolve_precision(CUDA, True) == "fp16"
    assert resolve_precision(CPU, False) == "fp32"  # the model does not allow it
    assert resolve_precision(CPU, True, "fp32") == "fp32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision(CPU, True) == "fp32"  # emulated bf16 would be slower
    assert resolve_precision(CPU, True, "bf16") == "bf16"  # asked for: done
    assert resolve_precision(CUDA, True, "bf16") == "bf16"
    with pytest.raises(OptionError, match="fp32 only"):
        resolve_precision(CPU, False, "bf16")
    with pytest.raises(OptionError, match="--precision must be one of"):
        resolve_precision(CPU, True, str("fp8"))  # noqa: UP018 (not a Precision)
    assert describe(CPU, "bf16") == "bf16 convolutions"
    assert describe(CUDA, "fp16") == "fp16 autocast"


def luma(seed: int, size: int = 40) -> torch.Tensor:
    """``(1, 1, size, size)`` float Y of a smooth natural-looking image, in [0, 1]."""
    rgb = smooth_image(seed, size, size, period=5.0).astype(np.float32)
    y = (16 + rgb @ np.array([65.481, 128.553, 24.966], np.float32) / 255) / 255
    return torch.from_numpy(y)[None, None]


@pytest.mark.parametrize("name", ["fast", "fast-hq", "fast-ecb", "srcnn", "quality"])
def test_every_shipped_model_stays_within_a_code(name: str) -> None:
    model = load_model(name, 2)
    converted, count = with_bf16_convolutions(model)
    assert count > 0
    x = luma(3)
    with torch.inference_mode():
        fp32 = (model(x) * 255).round()
        bf16 = (converted(x) * 255).round()
    diff = (fp32 - bf16).abs()
    assert diff.max().item() <= 2 and diff.mean().item() < 0.2, (name, diff.max(), diff.mean())


def test_the_processor_runs_the_precision_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    model = load_model("fast", 2)
    fmt = YuvFormat(6, False, 8)  # BT.601 studio range
    formats = PlaneFormats(fmt, fmt, "yuv420p")
    auto = FrameProcessor(model, CPU, formats)
    assert auto.precision == "bf16" and auto.precision_label == "bf16 convolutions"
    assert isinstance(auto.model.net.tail, BF16Conv2d)
    assert type(model.net.tail) is nn.Conv2d  # the caller's model is left in fp32
    exact = FrameProcessor(model, CPU, formats, ProcessorOptions(precision="fp32"))
    assert exact.precision == "fp32" and type(exact.model.net.tail) is nn.Conv2d
    baseline = FrameProcessor(load_model("bicubic", 2), CPU, formats)
    assert baseline.precision == "fp32"  # nothing to convert


def test_upscale_in_bf16_is_within_a_code_of_fp32(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = make_video(tmp_path / "in.mp4", n=3)
    outs = {}
    for mode in ("fp32", "bf16"):
        out = tmp_path / f"{mode}.mkv"
        options = ("--model", "fast", "--device", "cpu", "--codec", "ffv1", "--color", "off")
        assert upscale_main(src, out, *options, "--precision", mode) == 0
        outs[mode] = [f.to_ndarray(format="gray").astype(int) for f in read_frames(out)]
        summary = capsys.readouterr().out
        assert ("(bf16 convolutions)" in summary) == (mode == "bf16"), summary
    for a, b in zip(outs["fp32"], outs["bf16"], strict=True):
        assert np.abs(a - b).max() <= 2 and 0 < np.abs(a - b).mean() < 0.2
