"""Y-PSNR / Y-SSIM against hand-computed values (MATLAB rgb2ycbcr, ssim_index)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidsr.eval.metrics import luma, psnr, psnr_y, rgb_to_y, shave, ssim, ssim_y


def test_rgb_to_y_matches_matlab_rgb2ycbcr() -> None:
    px = np.array(
        [[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8
    )
    y = rgb_to_y(px, round_to_code=False)[0]
    np.testing.assert_allclose(y, [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    np.testing.assert_array_equal(rgb_to_y(px)[0], [16, 235, 81, 145, 41])
    # float input in [0, 1] gives the same as uint8 codes
    np.testing.assert_allclose(
        rgb_to_y(px.astype(np.float32) / 255, round_to_code=False)[0], y, atol=1e-4
    )


def test_grayscale_is_its_own_y() -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(luma(g), g.astype(np.float64))
    expected = np.round(16 + 219 * g.astype(np.float64) / 255.0)
    np.testing.assert_array_equal(luma(np.dstack([g, g, g])), expected)


def test_psnr_of_a_constant_offset() -> None:
    hr = np.full((20, 30), 100, dtype=np.uint8)
    for d in (1, 5, 20):
        sr = hr + np.uint8(d)
        assert psnr_y(sr, hr) == pytest.approx(20 * math.log10(255 / d), abs=1e-9)
    assert psnr_y(hr, hr) == math.inf


def test_psnr_y_of_rgb_offset_uses_studio_y() -> None:
    hr = np.full((8, 8, 3), 100, dtype=np.uint8)
    sr = hr + np.uint8(10)
    # Y codes: round(16 + 219 * 100 / 255) = 102, round(16 + 219 * 110 / 255) = 110
    assert rgb_to_y(hr)[0, 0] == 102 and rgb_to_y(sr)[0, 0] == 110
    assert psnr_y(sr, hr) == pytest.approx(20 * math.log10(255 / 8))


def test_crop_ignores_the_border() -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert psnr_y(sr, hr, crop=3) == math.inf
    assert psnr_y(sr, hr, crop=2) < 30
    assert shave(hr, 3).shape == (18, 18, 3)
    with pytest.raises(ValueError):
        shave(hr, 12)


def test_ssim_identical_is_one_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim_y(a, a, crop=2) == pytest.approx(1.0, abs=1e-12)
    s = ssim_y(a, b, crop=2)
    assert 0.0 < s < 1.0
    assert s == pytest.approx(ssim_y(b, a, crop=2), abs=1e-12)


def test_ssim_of_constant_planes_is_the_luminance_term() -> None:
    """No variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2."""
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(np.full((16, 16), a), np.full((16, 16), b))
    assert got == pytest.approx(expected, abs=1e-12)


def test_ssim_of_a_contrast_change_hand_computed() -> None:
    """y = 2x around the same mean: luminance term 1, so SSIM is the mean of
    (2 * 2 var + C2) / (var + 4 var + C2) over valid windows (uniform variance here)."""
    x = np.tile(np.array([[100.0, 110.0], [110.0, 100.0]]), (12, 12))
    y = 105.0 + 2 * (x - 105.0)
    c2 = (0.03 * 255) ** 2
    got = ssim(x, y)
    # variance of the checkerboard under a normalised window is about 25 everywhere
    expected = (4 * 25 + c2) / (5 * 25 + c2)
    assert got == pytest.approx(expected, abs=2e-3)


def test_psnr_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_ssim_matches_a_brute_force_window_loop() -> None:
    """Independent check of the filtering: explicit 11x11 Gaussian windows at every
    'valid' position (MATLAB ssim_index with its default window)."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (17, 15)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 15, a.shape), 0, 255)
    ax = np.arange(11) - 5
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            wa, wb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (g * wa).sum(), (g * wb).sum()
            va = (g * (wa - ma) ** 2).sum()
            vb = (g * (wb - mb) ** 2).sum()
            cov = (g * (wa - ma) * (wb - mb)).sum()
            num = (2 * ma * mb + c1) * (2 * cov + c2)
            vals.append(num / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    assert ssim(a, b) == pytest.approx(float(np.mean(vals)), abs=1e-9)
