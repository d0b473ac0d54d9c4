"""Super-resolution metrics under the standard (MATLAB) evaluation protocol.

* Y is MATLAB ``rgb2ycbcr``'s luma, BT.601 studio range:
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in ``[0, 1]``. For uint8 input
  MATLAB returns uint8, i.e. Y rounded to an integer code; :func:`rgb_to_y` does the same
  by default, as the published SRCNN/VDSR evaluation scripts do.
* A grayscale image (e.g. Set14 ``bridge.png``) is its own Y, in full range: the
  SRCNN/VDSR MATLAB scripts only call ``rgb2ycbcr`` when ``size(im, 3) > 1``. This is what
  reproduces the published bicubic figures (Set14 x2 30.23 dB; bridge 26.58 dB).
  Replicating to RGB first would give ``16 + 219 v / 255``, shrink errors by 219/255 and
  score bridge 1.3 dB (Set14 0.09 dB) higher than the papers' tables.
* ``scale`` pixels are cropped from every border before PSNR/SSIM.
* SSIM is Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window, sigma 1.5, K1 = 0.01,
  K2 = 0.03, L = 255, 'valid' filtering, on Y as float64, no downsampling.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1)`` grayscale -> ``(H, W, 3)`` by replication; RGB passes;
    RGBA drops alpha. Keeps the dtype."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(f"expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")


def rgb_to_y(image: np.ndarray, *, round_to_code: bool = True) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of an image.

    Args:
        image: ``(H, W, 3)`` RGB or ``(H, W)`` grayscale, uint8 (codes 0..255) or float
            in ``[0, 1]``.
        round_to_code: round Y to an integer code as MATLAB does for uint8 input.

    Returns:
        ``(H, W)`` float64 Y in code values (16..235 for in-range input).
    """
    rgb = to_rgb(image)
    if rgb.dtype == np.uint8:
        x = rgb.astype(np.float64) / 255.0
    elif np.issubdtype(rgb.dtype, np.floating):
        x = rgb.astype(np.float64)
    else:
        raise TypeError(f"expected uint8 or float image, got {rgb.dtype}")
    y = 16.0 + x @ _Y_WEIGHTS
    return np.round(y) if round_to_code else y


def luma(image: np.ndarray) -> np.ndarray:
    """The plane the protocol scores: :func:`rgb_to_y` (rounded) of an RGB image, the
    image itself for a grayscale ``(H, W)`` one. ``(H, W)`` float64 code values."""
    if image.ndim == 2:
        return image.astype(np.float64)
    return rgb_to_y(image)


def shave(plane: np.ndarray, border: int) -> np.ndarray:
    """Crop ``border`` pixels from each side of an ``(H, W, ...)`` array."""
    if border <= 0:
        return plane
    if plane.shape[0] <= 2 * border or plane.shape[1] <= 2 * border:
        raise ValueError(f"image {plane.shape[1]}x{plane.shape[0]} too small to crop {border}")
    return plane[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> float:
    """PSNR in dB between two same-shape arrays (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    return g @ g.T


def ssim(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> float:
    """Mean SSIM of two same-shape 2-D planes (code values), MATLAB ``ssim_index``."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two equal 2-D planes, got {a.shape} and {b.shape}")
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs planes of at least 11x11, got {a.shape[1]}x{a.shape[0]}")
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    win = _gaussian_window()

    def filt(img: np.ndarray) -> np.ndarray:
        # filter2D centres the window; keeping the interior is MATLAB's 'valid' mode.
        return cv2.filter2D(img, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def psnr_y(sr: np.ndarray, hr: np.ndarray, crop: int = 0) -> float:
    """Y-channel PSNR (dB) of ``sr`` against ``hr`` after cropping ``crop`` border pixels.

    Args:
        sr, hr: ``(H, W, 3)`` RGB or ``(H, W)`` grayscale uint8, same size (grayscale
            images are scored as they are, see :func:`luma`).
        crop: border to ignore, normally the scale factor.
    """
    return psnr(shave(luma(sr), crop), shave(luma(hr), crop))


def ssim_y(sr: np.ndarray, hr: np.ndarray, crop: int = 0) -> float:
    """Y-channel SSIM of ``sr`` against ``hr`` after cropping ``crop`` border pixels
    (inputs as for :func:`psnr_y`)."""
    return ssim(shave(luma(sr), crop), shave(luma(hr), crop))
