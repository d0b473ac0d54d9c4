"""Aligned HR/LR patches cut from codec-degraded sequences (the dataset's codec mode).

A sample is one short HR sequence, a still moved by :mod:`vidsr.training.motion` or a
run of consecutive video frames, cropped to a bounded window. It is degraded as a whole by
:func:`vidsr.training.codec_degrade.degrade_sequence`, and patches are cut from random
frames of the *decoded* sequence (so P and B frames give patches as well as keyframes), at
random LR-grid positions at least :data:`MARGIN` LR pixels inside the window, where the
downscale and the encoder see real picture on every side.

Each sample draws from its own ``numpy.random.Generator`` seeded by ``(seed, input index,
sample index)``, so its bytes depend on nothing that was built before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidsr.training import codec_degrade, motion
from vidsr.training.codec_degrade import CodecSpec, SampleParams

MARGIN = 3


@dataclass(frozen=True)
class Patches:
    """One sample's output: ``hr`` ``(n, P, P, 3)`` and ``lr`` ``(n, p, p, 3)`` uint8 RGB,
    the picture type of each patch's frame, and the settings drawn."""

    hr: np.ndarray
    lr: np.ndarray
    types: list[str]
    params: SampleParams


def sample_rng(seed: int, input_index: int, sample_index: int) -> np.random.Generator:
    """The generator of one sample."""
    return np.random.default_rng([seed, input_index, sample_index])


def _side(limit_hr: int, scale: int, spec: CodecSpec, fill: float) -> int:
    """LR window side: at most ``spec.window`` and ``fill`` of the room, even."""
    side = min(spec.window, int(fill * limit_hr / scale))
    return side - side % 2


def window_for(
    shape: tuple[int, int], scale: int, lr_patch: int, spec: CodecSpec, fill: float
) -> tuple[int, int] | None:
    """The LR window ``(h, w)`` for a frame of ``shape`` HR pixels, or None when a patch
    plus margins does not fit."""
    h, w = _side(shape[0], scale, spec, fill), _side(shape[1], scale, spec, fill)
    if min(h, w) < lr_patch + 2 * MARGIN:
        return None
    return h, w


def _cut(
    hr: np.ndarray,
    lr: np.ndarray,
    types: list[str],
    params: SampleParams,
    scale: int,
    lr_patch: int,
    count: int,
    rng: np.random.Generator,
) -> Patches:
    """Cut ``count`` aligned patches at random frames and positions."""
    n, h, w, _ = lr.shape
    p, s = lr_patch, scale
    ts = rng.integers(0, n, size=count)
    ys = rng.integers(MARGIN, h - MARGIN - p + 1, size=count)
    xs = rng.integers(MARGIN, w - MARGIN - p + 1, size=count)
    hr_p = np.stack(
        [hr[t, y * s : (y + p) * s, x * s : (x + p) * s] for t, y, x in zip(ts, ys, xs)]
    )
    lr_p = np.stack([lr[t, y : y + p, x : x + p] for t, y, x in zip(ts, ys, xs)])
    return Patches(hr_p, lr_p, [types[t] for t in ts], params)


def patch_count(
    window: tuple[int, int], scale: int, lr_patch: int, coverage: float, max_patches: int
) -> int:
    """Patches per sample: ``coverage`` times the window's area in patches, capped."""
    area = (window[0] - 2 * MARGIN) * (window[1] - 2 * MARGIN)
    return min(max_patches, max(1, math.ceil(coverage * area / lr_patch**2)))


def from_still(
    image: np.ndarray,
    scale: int,
    lr_patch: int,
    spec: CodecSpec,
    *,
    coverage: float,
    max_patches: int,
    rng: np.random.Generator,
) -> Patches | None:
    """One sample from a ``(H, W, 3)`` uint8 RGB still: motion, degrade, cut.

    Returns None when the image is too small for a window that holds a patch.
    """
    params = codec_degrade.draw_params(spec, rng)
    window = window_for(image.shape[:2], scale, lr_patch, spec, fill=0.9)
    if window is None:
        return None
    hr_window = (window[0] * scale, window[1] * scale)
    maps = motion.still_trajectory(
        image.shape[:2],
        hr_window,
        params.frames,
        rng,
        speed=spec.motion * scale,
        zoom=spec.zoom,
        rotate=spec.rotate,
    )
    hr = motion.render(np.ascontiguousarray(image), maps, hr_window)
    lr, _clean, types = codec_degrade.degrade_sequence(hr, scale, params, rng)
    count = patch_count(window, scale, lr_patch, coverage, max_patches)
    return _cut(hr, lr, types, params, scale, lr_patch, count, rng)


def video_crop(
    shape: tuple[int, int], scale: int, lr_patch: int, spec: CodecSpec, rng: np.random.Generator
) -> tuple[int, int, int, int] | None:
    """A random HR crop ``(y, x, h, w)`` for a video chunk of ``shape`` frames, or None."""
    window = window_for(shape, scale, lr_patch, spec, fill=1.0)
    if window is None:
        return None
    h, w = window[0] * scale, window[1] * scale
    return int(rng.integers(0, shape[0] - h + 1)), int(rng.integers(0, shape[1] - w + 1)), h, w


def from_frames(
    hr: np.ndarray,
    scale: int,
    lr_patch: int,
    params: SampleParams,
    *,
    coverage: float,
    max_patches: int,
    rng: np.random.Generator,
) -> Patches:
    """One sample from ``(N, H, W, 3)`` uint8 RGB consecutive frames already cropped by
    :func:`video_crop` (H, W multiples of ``2 * scale``): degrade, cut."""
    lr, _clean, types = codec_degrade.degrade_sequence(hr, scale, params, rng)
    window = (hr.shape[1] // scale, hr.shape[2] // scale)
    count = patch_count(window, scale, lr_patch, coverage, max_patches)
    return _cut(hr, lr, types, params, scale, lr_patch, count, rng)
