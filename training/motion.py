"""Smooth random sub-pixel camera motion over a still image, for codec training sequences.

A still becomes ``N`` frames seen through a moving window: a pan at a random sub-pixel
velocity with a small acceleration, a slight zoom and a slight rotation, all smooth in time,
so an encoder's inter prediction meets the motion it meets in real footage. Each frame is
one affine map from window pixels to image pixels (2x3, the ``cv2.warpAffine`` inverse-map
convention); the trajectory is scaled down until every window corner of every frame lies
inside the image, so a frame never samples beyond it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _offsets(
    n: int, speed: float, zoom: float, rotate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame displacement ``(N, 2)`` (x, y) and linear part ``(N, 2, 2)``, centred."""
    u = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    frac = u / max(n - 1, 1)  # -0.5 .. 0.5
    angle = rng.uniform(0, 2 * math.pi)
    velocity = rng.uniform(0, speed) * np.array([math.cos(angle), math.sin(angle)])
    accel = rng.uniform(-1, 1, 2) * speed / max(n, 1)
    shift = velocity[None] * u[:, None] + 0.5 * accel[None] * u[:, None] ** 2
    z = np.exp(rng.uniform(-zoom, zoom) * frac)
    theta = np.deg2rad(rng.uniform(-rotate, rotate)) * frac
    cos, sin = np.cos(theta) * z, np.sin(theta) * z
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    return shift, linear


def _extent(shift: np.ndarray, linear: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Min/max image offset from the window centre over all frames and corners: ``(2, 2)``
    as ``[[min_x, min_y], [max_x, max_y]]``."""
    wh, ww = window
    half = (
        np.array(
            [[-(ww - 1), -(wh - 1)], [ww - 1, -(wh - 1)], [-(ww - 1), wh - 1], [ww - 1, wh - 1]],
            np.float64,
        )
        / 2.0
    )
    pts = shift[:, None, :] + np.einsum("nij,cj->nci", linear, half)
    return np.stack([pts.min(axis=(0, 1)), pts.max(axis=(0, 1))])


def still_trajectory(
    image_size: tuple[int, int],
    window: tuple[int, int],
    n: int,
    rng: np.random.Generator,
    *,
    speed: float = 2.0,
    zoom: float = 0.03,
    rotate: float = 1.0,
) -> np.ndarray:
    """Draw ``n`` affine maps ``(n, 2, 3)`` float64 from window to image pixel coordinates.

    Args:
        image_size: ``(H, W)`` of the still; window: ``(h, w)`` of the output frames
            (each side at most the image's).
        speed: largest pan speed in image pixels per frame.
        zoom: largest log-zoom change over the sequence; rotate: largest rotation over the
            sequence in degrees.

    Every window corner of every frame maps into ``[0, W-1] x [0, H-1]``.
    """
    (H, W), (h, w) = image_size, window
    if h > H or w > W:
        raise ValueError(f"window {w}x{h} is larger than the image {W}x{H}")
    shift, linear = _offsets(n, speed, zoom, rotate, rng)
    room = np.array([W - 1, H - 1], np.float64)
    for _ in range(30):  # halve the motion until the whole trajectory fits
        lo, hi = _extent(shift, linear, window)
        if np.all(hi - lo <= room):
            break
        shift = shift * 0.5
        linear = np.eye(2)[None] + (linear - np.eye(2)[None]) * 0.5
    else:
        shift, linear = np.zeros_like(shift), np.repeat(np.eye(2)[None], n, 0)
        lo, hi = _extent(shift, linear, window)
    centre = np.array([rng.uniform(-lo[0], room[0] - hi[0]), rng.uniform(-lo[1], room[1] - hi[1])])
    qc = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    offset = centre[None] + shift - np.einsum("nij,j->ni", linear, qc)
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def render(image: np.ndarray, maps: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Render ``(H, W, 3)`` uint8 ``image`` through ``maps`` ``(N, 2, 3)``: returns
    ``(N, h, w, 3)`` uint8 frames (Lanczos-4 resampling, the sharpest OpenCV offers)."""
    h, w = window
    flags = cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP
    return np.stack(
        [
            cv2.warpAffine(image, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
            for m in maps
        ]
    )
