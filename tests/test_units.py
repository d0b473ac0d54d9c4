"""Unit tests of the pure pieces: colour maths, tiling, configs, batching, baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vidsr.colour.convert import YuvFormat, codes_to_norm, norm_to_codes, rgb_to_yuv, yuv_to_rgb
from vidsr.config import EncodeConfig, RunConfig
from vidsr.engine.tiling import tile_spans, tiled_apply
from vidsr.errors import OptionError
from vidsr.media.planes import HostFrame
from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.pipeline.runner import _batches


@pytest.mark.parametrize(
    "matrix,full,bits", list(itertools.product((1, 6, 9), (False, True), (8, 10)))
)
def test_colour_round_trip_within_one_code(matrix: int, full: bool, bits: int) -> None:
    fmt = YuvFormat(matrix, full, bits)
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(matrix + bits))
    y, uv = rgb_to_yuv(rgb, fmt)
    y_codes, uv_codes = norm_to_codes(y, bits), norm_to_codes(uv, bits)
    back = yuv_to_rgb(codes_to_norm(y_codes, bits), codes_to_norm(uv_codes, bits), fmt)
    # one code of quantisation in YUV is at most ~1.5 codes of RGB at this depth
    assert (back - rgb).abs().max().item() < 2.0 / ((1 << bits) - 1) * 1.6


def test_limited_range_black_and_white_codes() -> None:
    fmt = YuvFormat(1, False, 8)
    y, uv = rgb_to_yuv(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1), fmt)
    assert norm_to_codes(y, 8).flatten().tolist() == [16, 235]
    assert norm_to_codes(uv, 8).flatten().tolist() == [128, 128, 128, 128]
    y10, _ = rgb_to_yuv(torch.ones(1, 3, 1, 1), YuvFormat(1, False, 10))
    assert norm_to_codes(y10, 10).item() == 940


def test_bt709_and_bt601_differ_for_saturated_colour() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    y709, _ = rgb_to_yuv(red, YuvFormat(1, False, 8))
    y601, _ = rgb_to_yuv(red, YuvFormat(6, False, 8))
    assert norm_to_codes(y709, 8).item() == 63 and norm_to_codes(y601, 8).item() == 81


def test_tile_spans_cover_exactly() -> None:
    spans = list(tile_spans(50, 16, 4))
    assert [(a, b) for a, b, _, _ in spans] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    assert all(c0 == max(0, a - 4) and c1 == min(50, b + 4) for a, b, c0, c1 in spans)


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos"])
def test_tiled_equals_untiled(kernel: str) -> None:
    up = PolyphaseUpsampler(3, kernel)
    x = torch.rand(2, 1, 37, 29, generator=torch.Generator().manual_seed(0))
    whole = up(x)
    tiled = tiled_apply(up, x, scale=3, tile=10, overlap=up.radius + 1)
    assert torch.allclose(whole, tiled, atol=1e-6)


def test_bicubic_upsampler_keeps_constant_and_linear_ramps() -> None:
    up = PolyphaseUpsampler(2, "bicubic")
    const = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(up(const), torch.full((1, 1, 16, 16), 0.3), atol=1e-6)
    ramp = torch.arange(12.0).view(1, 1, 1, 12).expand(1, 1, 6, 12)
    out = up(ramp)[0, 0, 3, 4:20]  # away from the borders
    expected = (torch.arange(4, 20) + 0.5) / 2 - 0.5
    assert torch.allclose(out, expected, atol=1e-5)


def test_batches_keep_order_and_the_last_partial_batch() -> None:
    frames = [HostFrame(i, i * 10, 10, (np.zeros((2, 2), np.uint8),) * 3) for i in range(7)]
    forwarded: list[object] = []
    items: list[object] = [frames[0], "audio-1", *frames[1:5], "audio-2", *frames[5:]]
    batches = list(_batches(iter(items), 3, forwarded.append))
    assert [[f.index for f in b] for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert forwarded == ["audio-1", "audio-2"]


@pytest.mark.parametrize(
    "kwargs", [{"scale": 5}, {"batch_size": 0}, {"tile": 2}, {"colour": "sepia"}]
)
def test_run_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(OptionError):
        RunConfig(**kwargs)


def test_encode_config_rejects_bad_crf() -> None:
    with pytest.raises(OptionError):
        EncodeConfig(crf=-1)


@pytest.mark.parametrize("kernel,scale", [("bicubic", 2), ("bicubic", 3), ("lanczos", 4)])
def test_cpu_fast_path_matches_torch_path(kernel: str, scale: int) -> None:
    up = PolyphaseUpsampler(scale, kernel)
    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(scale))
    fast = up(x)  # OpenCV path (CPU, float32, no grad)
    reference = up._upsample_axis(up._upsample_axis(x, 3), 2)  # pure torch path
    assert torch.allclose(fast, reference, atol=1e-5)


def test_torch_upsampler_path_supports_autograd() -> None:
    up = PolyphaseUpsampler(2, "bicubic")
    x = torch.rand(1, 1, 8, 8, requires_grad=True)
    up(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kernel,scale", [("bicubic", 2), ("bicubic", 4), ("lanczos", 3)])
def test_eight_bit_baseline_path_within_one_code_of_float_path(kernel: str, scale: int) -> None:
    up = PolyphaseUpsampler(scale, kernel)
    plane = np.random.default_rng(scale).integers(0, 256, (37, 53), dtype=np.uint8)
    fast = up.upsample_u8(plane).astype(int)
    exact = up(torch.from_numpy(plane.astype(np.float32))[None, None])[0, 0].numpy()
    assert np.abs(fast - np.clip(np.rint(exact), 0, 255)).max() <= 1


def test_processor_uses_the_integer_path_only_when_nothing_needs_floats() -> None:
    from vidsr.colour.convert import YuvFormat
    from vidsr.colour.matching import ColourMatcher
    from vidsr.engine.processor import FrameProcessor, PlaneFormats, ProcessorOptions
    from vidsr.engine.upscaler import load_model

    fmt8, fmt10 = YuvFormat(1, False, 8), YuvFormat(1, False, 10)
    cpu = torch.device("cpu")
    plain = PlaneFormats(fmt8, fmt8, "yuv420p")

    def kernel(formats: PlaneFormats = plain, **options: object) -> str:
        model = load_model("bicubic", 2)
        return FrameProcessor(model, cpu, formats, ProcessorOptions(**options)).kernel

    assert kernel() == "integer"
    assert kernel(PlaneFormats(fmt8, fmt10, "yuv420p10le")) == "float"
    assert kernel(colour_stage=ColourMatcher("shot")) == "float"
    assert kernel(tile=16) == "float"
    assert FrameProcessor(load_model("fast", 2), cpu, plain).kernel == "float"  # no integer path
    ensembled = load_model("bicubic", 2, self_ensemble=True)
    assert not ensembled.integer_path and FrameProcessor(ensembled, cpu, plain).kernel == "float"
    frames = [
        HostFrame(
            0,
            0,
            1,
            (
                np.full((24, 32), 100, np.uint8),
                np.full((12, 16), 90, np.uint8),
                np.full((12, 16), 160, np.uint8),
            ),
        )
    ]
    y, u, v = FrameProcessor(load_model("bicubic", 2), cpu, plain).process(frames)[0]
    assert (
        y.shape == (48, 64)
        and u.shape == (24, 32)
        and (y == 100).all()
        and (u == 90).all()
        and (v == 160).all()
    )
