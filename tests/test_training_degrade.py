"""Degradations: shapes and dtypes kept, seeded results repeat, specs validated."""

from __future__ import annotations

import numpy as np
import pytest

from vidsr.errors import OptionError
from vidsr.training import degrade


def patches(n: int = 4, h: int = 12, w: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    return np.stack([np.clip(base + rng.normal(0, 20, base.shape), 0, 255) for _ in range(n)]).astype(np.uint8)


@pytest.mark.parametrize("spec", ["jpeg:50", "h264:35", "blur:1.0", "noise:3"])
@pytest.mark.parametrize("shape", [(4, 12, 12, 3), (3, 9, 11, 3), (12, 12, 3)])
def test_shape_and_dtype_kept(spec: str, shape: tuple[int, ...]) -> None:
    x = patches(4, 12, 12)[..., : shape[-3], : shape[-2], :]
    x = np.ascontiguousarray(x[: shape[0]] if len(shape) == 4 else x[0])
    out = degrade.apply(x, (degrade.parse_spec(spec),), np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.uint8
    assert not np.array_equal(out, x)


def test_seeded_and_repeatable() -> None:
    x = patches()
    steps = (degrade.parse_spec("h264:30"), degrade.parse_spec("noise:2"))
    a = degrade.apply(x, steps, np.random.default_rng(7))
    b = degrade.apply(x, steps, np.random.default_rng(7))
    c = degrade.apply(x, steps, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_input_not_modified_and_blur_zero_is_identity() -> None:
    x = patches()
    before = x.copy()
    degrade.jpeg(x, 30)
    assert np.array_equal(x, before)
    assert np.array_equal(degrade.gaussian_blur(x, 0.0), x)


def test_parse_spec() -> None:
    assert degrade.parse_spec("JPEG:80") == degrade.Degradation("jpeg", 80.0)
    assert degrade.parse_spec("blur").value == 0.8
    for bad in ("sharpen:1", "jpeg:abc", "h264:80"):
        with pytest.raises(OptionError):
            degrade.parse_spec(bad)


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        degrade.jpeg(np.zeros((2, 8, 8, 3), np.float32), 50)
    with pytest.raises(ValueError):
        degrade.gaussian_blur(np.zeros((8, 8), np.uint8), 1.0)
