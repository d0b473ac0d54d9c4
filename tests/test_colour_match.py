"""Histogram matching maths and the stateful ColourMatcher (CPU, synthetic)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidsr.colour.matching import ColourMatcher, apply_lut, histogram, matching_lut


def _codes(*shape: int, low: int = 16, high: int = 235, seed: int = 0) -> torch.Tensor:
    """8-bit codes normalised to [0, 1], smooth random texture."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(*shape[:-2], shape[-2] // 4 + 1, shape[-1] // 4 + 1, generator=g)
    flat = noise.reshape(-1, 1, *noise.shape[-2:])
    smooth = F.interpolate(flat, size=shape[-2:], mode="bilinear", align_corners=False)
    smooth = smooth.reshape(shape)
    return (low + (high - low) * smooth).round() / 255


def _upscale(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


# ---- histogram -------------------------------------------------------------------------


def test_histogram_sums_to_one_and_hits_code_bins() -> None:
    x = torch.tensor([[0.0, 1.0], [10 / 255, 10 / 255]])
    h = histogram(x, 256)
    assert h.shape == (256,)
    assert torch.isclose(h.sum(), torch.tensor(1.0))
    assert h[0] == pytest.approx(0.25) and h[255] == pytest.approx(0.25)
    assert h[10] == pytest.approx(0.5, abs=1e-5)


def test_histogram_soft_binning_splits_between_centres() -> None:
    h = histogram(torch.full((2, 2), 10.25 / 255), 256)
    assert h[10] == pytest.approx(0.75, abs=1e-4) and h[11] == pytest.approx(0.25, abs=1e-4)


def test_histogram_batched_leading_dims() -> None:
    x = _codes(3, 2, 16, 16)
    h = histogram(x, 64)
    assert h.shape == (3, 2, 64)
    torch.testing.assert_close(h[1, 0], histogram(x[1, 0], 64))


def test_histogram_rejects_bad_bins() -> None:
    with pytest.raises(ValueError, match="bins"):
        histogram(torch.zeros(4, 4), 1)


# ---- matching_lut / apply_lut ----------------------------------------------------------


@pytest.mark.parametrize(("gain", "shift"), [(0.8, 0.1), (1.15, -0.05), (1.0, 0.06)])
def test_known_gain_and_shift_are_undone(gain: float, shift: float) -> None:
    ref = _codes(1, 1, 96, 96)
    out = ref * gain + shift
    fixed = apply_lut(out, matching_lut(histogram(out), histogram(ref)))
    # within half a code value everywhere: exact once rounded back to 8-bit codes
    assert (fixed - ref).abs().max() * 255 < 0.5
    torch.testing.assert_close((fixed * 255).round(), ref * 255)


def test_continuous_gain_and_shift_are_undone() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(1, 1, 128, 128, generator=g) * 0.6 + 0.2
    out = ref * 1.2 - 0.1
    fixed = apply_lut(out, matching_lut(histogram(out), histogram(ref)))
    assert (fixed - ref).abs().mean() * 255 < 0.05
    assert (fixed - ref).abs().max() * 255 < 0.3


def test_lut_is_monotonic() -> None:
    ref = _codes(1, 1, 64, 64, seed=2)
    out = ref**2.2 + 0.02 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    lut = matching_lut(histogram(out.clamp(0, 1)), histogram(ref))
    assert bool((torch.diff(lut) >= 0).all())
    assert float(lut.min()) >= 0.0 and float(lut.max()) <= 1.0


def test_identity_when_histograms_match() -> None:
    x = _codes(1, 1, 64, 64, seed=4)
    lut = matching_lut(histogram(x), histogram(x))
    torch.testing.assert_close(lut, torch.linspace(0, 1, 256).expand_as(lut), atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_lut(x, lut), x, atol=1e-6, rtol=0)


def test_lut_extends_with_slope_one_outside_seen_range() -> None:
    src = histogram(torch.full((4, 4), 100 / 255))
    ref = histogram(torch.full((4, 4), 120 / 255))
    lut = matching_lut(src, ref)
    # values the source never had keep the +20 code offset instead of collapsing
    assert float(lut[90]) * 255 == pytest.approx(110, abs=1e-3)
    assert float(lut[110]) * 255 == pytest.approx(130, abs=1e-3)


def test_apply_lut_keeps_dtype_and_broadcasts_per_channel() -> None:
    x = torch.rand(2, 3, 8, 8).half()
    lut = torch.stack(
        [torch.linspace(0, 1, 256), torch.linspace(0, 1, 256) ** 2, torch.full((256,), 0.5)]
    )
    y = apply_lut(x, lut)
    assert y.dtype == torch.float16 and y.shape == x.shape
    torch.testing.assert_close(y[:, 0].float(), x[:, 0].float(), atol=2e-3, rtol=0)
    assert bool((y[:, 2] == 0.5).all())


def test_apply_lut_rejects_integer_input() -> None:
    with pytest.raises(TypeError, match="float"):
        apply_lut(torch.zeros(4, 4, dtype=torch.uint8), torch.linspace(0, 1, 256))


def test_apply_lut_interpolates_linearly() -> None:
    lut = torch.tensor([0.0, 0.5, 1.0, 1.0])
    x = torch.tensor([[0.0, 1 / 6, 1 / 3, 5 / 6]])
    expected = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    torch.testing.assert_close(apply_lut(x, lut), expected, atol=0.5 / 48, rtol=0)
    torch.testing.assert_close(apply_lut(x, lut, resolution=7), expected)  # 1/6 is on the grid


def test_matching_lut_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ"):
        matching_lut(torch.ones(3, 256), torch.ones(256))


# ---- ColourMatcher ----------------------------------------------------------------------


def _batch(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """LR 4:2:0 reference batch: y (n, 1, s, s), uv (n, 2, s/2, s/2)."""
    y = _codes(n, 1, size, size, seed=seed)
    uv = _codes(n, 2, size // 2, size // 2, low=90, high=170, seed=seed + 100)
    return y, uv


def _cast(y: torch.Tensor, uv: torch.Tensor, gain: float, shift: float, cb: float, cr: float):
    cast_uv = uv.clone()
    cast_uv[:, 0] += cb
    cast_uv[:, 1] += cr
    return (_upscale(y) * gain + shift).clamp(0, 1), _upscale(cast_uv).clamp(0, 1)


def _errors(ref_y, ref_uv, out_y, out_uv) -> torch.Tensor:
    """Per frame, per channel |mean(out) - mean(ref)| in code values: (N, 3)."""
    ref = torch.cat([ref_y.mean((2, 3)), ref_uv.mean((2, 3))], 1)
    out = torch.cat([out_y.mean((2, 3)), out_uv.mean((2, 3))], 1)
    return (out - ref).abs() * 255


def _pixel_errors(ref_y, ref_uv, out_y, out_uv) -> torch.Tensor:
    """Per frame, mean |out - uncast upscale| over Y, Cb, Cr pixels in code values: (N,)."""
    up_y, up_uv = _upscale(ref_y), _upscale(ref_uv)
    return (
        ((out_y - up_y).abs().mean((1, 2, 3)) + 2 * (out_uv - up_uv).abs().mean((1, 2, 3)))
        / 3
        * 255
    )


def test_off_is_identity() -> None:
    ref_y, ref_uv = _batch(2, 0)
    out_y, out_uv = _cast(ref_y, ref_uv, 0.9, 0.05, 0.02, -0.03)
    y, uv = ColourMatcher("off").apply(ref_y, ref_uv, out_y, out_uv, [True, False])
    assert y is out_y and uv is out_uv


@pytest.mark.parametrize("mode", ["frame", "shot"])
def test_modes_remove_a_cast_and_keep_shapes(mode: str) -> None:
    ref_y, ref_uv = _batch(4, 1)
    out_y, out_uv = _cast(ref_y, ref_uv, 0.85, 0.06, 0.03, -0.04)
    y, uv = ColourMatcher(mode).apply(ref_y, ref_uv, out_y, out_uv, [True, False, False, False])
    assert y.shape == out_y.shape and uv is not None and uv.shape == out_uv.shape
    assert y.dtype == out_y.dtype
    assert float(_errors(ref_y, ref_uv, out_y, out_uv).max()) > 5
    # the LR histogram stands in for the bicubic upscale: agreement within 1 code value
    assert float(_errors(ref_y, ref_uv, y, uv).max()) < 1.0


def test_shot_mode_resets_at_a_cut_across_batches() -> None:
    # Shot A (frames 0-4) has one cast, shot B (5-9) the opposite; batches of 3 split both.
    ref_a, uv_a = _batch(5, 10)
    ref_b, uv_b = _batch(5, 20)
    ref_b = ref_b * 0.5 + 0.3  # a different picture level too
    out_a = _cast(ref_a, uv_a, 0.8, 0.1, 0.05, 0.0)
    out_b = _cast(ref_b, uv_b, 1.1, -0.08, -0.05, 0.04)
    ref_y, ref_uv = torch.cat([ref_a, ref_b]), torch.cat([uv_a, uv_b])
    out_y, out_uv = torch.cat([out_a[0], out_b[0]]), torch.cat([out_a[1], out_b[1]])
    flags = [i in (0, 5) for i in range(10)]
    matcher = ColourMatcher("shot")
    ys, uvs = [], []
    for start in range(0, 10, 3):
        sl = slice(start, start + 3)
        y, uv = matcher.apply(ref_y[sl], ref_uv[sl], out_y[sl], out_uv[sl], flags[sl])
        ys.append(y)
        uvs.append(uv)
    errors = _errors(ref_y, ref_uv, torch.cat(ys), torch.cat(uvs))
    # every frame of both shots corrected, including the first frames after the cut:
    # means (colour) and pixels (the curve's shape, e.g. the gain)
    assert float(errors.max()) < 0.6, errors
    pixel = _pixel_errors(ref_y, ref_uv, torch.cat(ys), torch.cat(uvs))
    assert float(pixel.max()) < 0.6, pixel


def test_shot_mode_without_reset_would_leak() -> None:
    """Control for the test above: ignoring the cut leaves shot B visibly wrong."""
    ref_a, uv_a = _batch(5, 10)
    ref_b, uv_b = _batch(5, 20)
    out_a = _cast(ref_a, uv_a, 0.8, 0.1, 0.05, 0.0)
    out_b = _cast(ref_b, uv_b, 1.1, -0.08, -0.05, 0.04)
    matcher = ColourMatcher("shot", ema=0.01)
    matcher.apply(ref_a, uv_a, *out_a, [True] + [False] * 4)
    y, uv = matcher.apply(ref_b, uv_b, *out_b, [False] * 5)
    assert float(_pixel_errors(ref_b, uv_b, y, uv)[0]) > 2


def test_shot_mode_follows_a_fade() -> None:
    """A fade-in (reference brightening) with a constant cast: every frame is corrected."""
    base, uv = _batch(1, 40)
    levels = torch.linspace(0.2, 1.0, 12).reshape(12, 1, 1, 1)
    ref_y = 16 / 255 + (base - 16 / 255) * levels
    ref_uv = uv.expand(12, -1, -1, -1).clone()
    out_y, out_uv = _cast(ref_y, ref_uv, 0.85, 0.05, 0.03, -0.02)
    matcher = ColourMatcher("shot")
    flags = [True] + [False] * 11
    y1, uv1 = matcher.apply(ref_y[:6], ref_uv[:6], out_y[:6], out_uv[:6], flags[:6])
    y2, uv2 = matcher.apply(ref_y[6:], ref_uv[6:], out_y[6:], out_uv[6:], flags[6:])
    errors = _errors(ref_y, ref_uv, torch.cat([y1, y2]), torch.cat([uv1, uv2]))
    assert float(errors.max()) < 0.6, errors


def test_shot_mode_removes_frame_to_frame_pumping() -> None:
    """The network's brightness pumps +-3 codes per frame: track_mean levels it out."""
    ref_y, ref_uv = _batch(8, 60)
    out_y, out_uv = _cast(ref_y, ref_uv, 0.9, 0.05, 0.02, 0.0)
    pump = torch.tensor([3, -3, 2, -2, 3, -3, 1, -1], dtype=torch.float32).reshape(8, 1, 1, 1) / 255
    flags = [True] + [False] * 7
    y, uv = ColourMatcher("shot").apply(ref_y, ref_uv, out_y + pump, out_uv, flags)
    assert float(_errors(ref_y, ref_uv, y, uv).max()) < 1.0
    y, uv = ColourMatcher("shot", track_mean=False).apply(
        ref_y, ref_uv, out_y + pump, out_uv, flags
    )
    assert float(_errors(ref_y, ref_uv, y, uv).max()) > 1.0  # control: the pumping stays


def test_luma_only_and_partial_batches() -> None:
    ref_y, _ = _batch(3, 50)
    out_y = _upscale(ref_y) * 0.9 + 0.05
    matcher = ColourMatcher("shot")
    y, uv = matcher.apply(ref_y[:1], None, out_y[:1], None, [True])
    assert uv is None
    y, _ = matcher.apply(ref_y[1:], None, out_y[1:], None, [False, False])
    error = (y.mean((1, 2, 3)) - ref_y[1:].mean((1, 2, 3))).abs() * 255
    assert float(error.max()) < 0.5


def test_apply_validates_inputs() -> None:
    ref_y, ref_uv = _batch(2, 0)
    out_y, out_uv = _cast(ref_y, ref_uv, 1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="batch sizes"):
        ColourMatcher("frame").apply(ref_y, ref_uv, out_y, out_uv, [True])
    with pytest.raises(ValueError, match="chroma"):
        ColourMatcher("frame").apply(ref_y, None, out_y, out_uv, [True, False])
    with pytest.raises(ValueError, match="mode"):
        ColourMatcher("auto")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ema"):
        ColourMatcher("shot", ema=0.0)


def test_detector_flags_drive_shot_matching() -> None:
    """Stream of two shots with different casts: ShotDetector flags -> ColourMatcher."""
    import numpy as np

    from vidsr.colour.shots import ShotDetector, make_thumbnail

    g = torch.Generator().manual_seed(5)

    def shot(seed: int) -> tuple[torch.Tensor, torch.Tensor]:  # one picture, 12 noisy frames
        y, uv = _batch(1, seed, size=48)
        noise = torch.randn(12, 1, 48, 48, generator=g) * 1.5 / 255
        return (y + noise).clamp(0, 1), uv.expand(12, -1, -1, -1).clone()

    ref_a, uv_a = shot(70)
    ref_b, uv_b = shot(80)
    ref_y, ref_uv = torch.cat([ref_a, ref_b]), torch.cat([uv_a, uv_b])
    out_a = _cast(ref_a, uv_a, 0.8, 0.1, 0.05, 0.0)
    out_b = _cast(ref_b, uv_b, 1.1, -0.08, -0.05, 0.04)
    out_y, out_uv = torch.cat([out_a[0], out_b[0]]), torch.cat([out_a[1], out_b[1]])
    detector = ShotDetector()
    decided: list[tuple[int, bool]] = []
    for i in range(24):
        planes = [p.numpy() for p in (ref_y[i, 0], ref_uv[i, 0], ref_uv[i, 1])]
        decided += detector.push(make_thumbnail(*planes))
    decided += detector.flush()
    flags = [cut for _, cut in decided]
    assert [i for i, cut in enumerate(flags) if cut] == [0, 12]
    matcher = ColourMatcher("shot")
    ys, uvs = [], []
    for start in range(0, 24, 5):  # batches of 5, the last one partial
        sl = slice(start, start + 5)
        y, uv = matcher.apply(ref_y[sl], ref_uv[sl], out_y[sl], out_uv[sl], flags[sl])
        ys.append(y)
        uvs.append(uv)
    pixel = _pixel_errors(ref_y, ref_uv, torch.cat(ys), torch.cat(uvs))
    assert float(pixel.max()) < 0.8, np.round(pixel.numpy(), 2)


# ---- fused look-up to codes, measuring apart from applying ------------------------------


@pytest.mark.parametrize("bits", [8, 10])
def test_apply_lut_codes_equals_apply_lut_then_rounding(bits: int) -> None:
    from vidsr.colour.convert import norm_to_codes
    from vidsr.colour.matching import apply_lut_codes

    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 37, 53, generator=gen) * 1.1 - 0.05  # overshoot both ends
    x[0, 0, 0, :4] = torch.tensor([0.0, 1.0, -3.0, 7.0])
    bins = 256 if bits == 8 else 1024
    lut = (torch.linspace(0, 1, bins) ** torch.tensor([[0.8], [1.0], [1.25]])).clamp(0, 1)
    codes = apply_lut_codes(x, lut, bits)
    expected = norm_to_codes(apply_lut(x, lut), bits)
    assert codes.dtype == expected.dtype == (torch.uint8 if bits == 8 else torch.int32)
    assert codes.shape == x.shape and torch.equal(codes, expected)
    # the torch gather (what CUDA runs) gives the same codes as the numpy one
    assert torch.equal(apply_lut_codes(x.double(), lut, bits), codes)


@pytest.mark.parametrize("mode", ["frame", "shot"])
def test_measure_then_apply_codes_equals_apply(mode: str) -> None:
    from vidsr.colour.convert import norm_to_codes

    ref_y, ref_uv = _batch(6, 7)
    out_y, out_uv = _cast(ref_y, ref_uv, 0.9, 0.04, 0.02, -0.03)
    flags = [True, False, False, True, False, False]
    whole, split = ColourMatcher(mode), ColourMatcher(mode)
    for sl in (slice(0, 2), slice(2, 5), slice(5, 6)):
        y, uv = whole.apply(ref_y[sl], ref_uv[sl], out_y[sl], out_uv[sl], flags[sl])
        measured = split.measure(ref_y[sl], ref_uv[sl], out_y[sl], out_uv[sl])
        assert measured is not None and measured.shape == (sl.stop - sl.start, 2, 3, 256)
        y_codes, uv_codes = split.apply_codes(measured, out_y[sl], out_uv[sl], flags[sl], 8)
        assert torch.equal(y_codes, norm_to_codes(y, 8))
        assert uv_codes is not None and torch.equal(uv_codes, norm_to_codes(uv, 8))
    assert ColourMatcher("off").measure(ref_y, ref_uv, out_y, out_uv) is None
