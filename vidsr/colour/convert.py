"""Pure colour maths on planar YUV and RGB tensors (no IO, no device choice).

Plane values inside vidsr are **code-normalised**: ``v = code / (255 * 2**(bits - 8))``.
For 8-bit video that is simply ``code / 255``, so limited-range Y runs 16/255..235/255
and chroma is centred on 128/255; 10-bit codes map onto the same scale (code 64 -> 16/255),
exactly as FFmpeg shifts bit depths. Luma models see Y in this form, which is also what
MATLAB's ``rgb2ycbcr`` gives divided by 255, the convention SR networks are trained on.

RGB is float in ``[0, 1]``, gamma-encoded (no linearisation), ``(N, 3, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch and OpenCV are imported by the functions that use them
    import torch

# AVColorSpace values (libavutil/pixfmt.h) and their (Kr, Kb) luma coefficients.
MATRIX_COEFFICIENTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601 625-line)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601 525-line)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (approximated by NCL)
}
MATRIX_NAMES = {
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020nc",
    10: "bt2020c",
}
AVCOL_SPC_UNSPECIFIED = 2
AVCOL_RANGE_MPEG = 1  # limited / studio range
AVCOL_RANGE_JPEG = 2  # full range


@dataclass(frozen=True)
class YuvFormat:
    """How a stream's code values relate to colour.

    Attributes:
        matrix: AVColorSpace value (1 = BT.709, 6 = BT.601, 9 = BT.2020...).
        full_range: ``True`` for full (JPEG) range, ``False`` for limited (studio) range.
        bits: bits per sample (8, 10, 12, 16).
    """

    matrix: int
    full_range: bool
    bits: int

    def __post_init__(self) -> None:
        if self.matrix not in MATRIX_COEFFICIENTS:
            raise ValueError(f"unsupported colour matrix {self.matrix}")
        if not 8 <= self.bits <= 16:
            raise ValueError(f"bits must be 8..16, got {self.bits}")

    @property
    def max_code(self) -> int:
        return (1 << self.bits) - 1

    @property
    def code_scale(self) -> float:
        """Code value that normalises to 1.0 (``255 * 2**(bits-8)``)."""
        return float(255 << (self.bits - 8))


def guess_matrix(height: int, width: int) -> int:
    """The matrix to assume when a stream does not say: BT.709 for HD and larger
    (height >= 720 or width >= 1280), BT.601 (SMPTE 170M) for SD, as FFmpeg and
    players do. Callers log that they guessed."""
    return 1 if height >= 720 or width >= 1280 else 6


def codes_to_norm(codes: torch.Tensor, bits: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Integer codes (uint8, or int16/int32 holding up to 16-bit values) to code-normalised
    float (``dtype``, default float32)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    scale = 1.0 / float(255 << (bits - 8))
    if codes.device.type == "cpu" and codes.dtype == torch.uint8 and dtype == torch.float32:
        # numpy casts and scales in one pass; torch's CPU path makes two.
        return torch.from_numpy(np.multiply(codes.numpy(), np.float32(scale), dtype=np.float32))
    return codes.to(dtype) * scale


def norm_to_codes(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Code-normalised float to rounded, clamped integer codes.

    Returns uint8 for 8-bit and int32 otherwise (torch has no uint16 arithmetic on every
    device; the host side narrows to uint16 when it copies into the frame).
    """
    import cv2
    import torch

    if bits == 8 and values.device.type == "cpu" and values.dtype == torch.float32:
        # One SIMD pass: OpenCV scales, rounds and saturates to uint8 together. It takes
        # the absolute value, so negatives are clamped to zero first (in place).
        flat = values.detach().contiguous().numpy().reshape(-1, values.shape[-1])
        np.maximum(flat, 0.0, out=flat)
        return torch.from_numpy(cv2.convertScaleAbs(flat, alpha=255.0).reshape(values.shape))
    codes = (values.float() * float(255 << (bits - 8))).round_().clamp_(0, (1 << bits) - 1)
    return codes.to(torch.uint8) if bits == 8 else codes.to(torch.int32)


def _unit_yuv(
    y: torch.Tensor, uv: torch.Tensor, fmt: YuvFormat
) -> tuple[torch.Tensor, torch.Tensor]:
    """Code-normalised Y, UV -> Y in [0, 1] and chroma in [-0.5, 0.5]."""
    if fmt.full_range:
        k = fmt.code_scale / fmt.max_code
        half = float(1 << (fmt.bits - 1)) / fmt.max_code
        return y * k, uv * k - half
    return (y * 255.0 - 16.0) / 219.0, (uv * 255.0 - 128.0) / 224.0


def _norm_yuv(
    y: torch.Tensor, uv: torch.Tensor, fmt: YuvFormat
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`_unit_yuv`."""
    if fmt.full_range:
        k = fmt.max_code / fmt.code_scale
        half = float(1 << (fmt.bits - 1)) / fmt.code_scale
        return y * k, uv * k + half
    return (y * 219.0 + 16.0) / 255.0, (uv * 224.0 + 128.0) / 255.0


def yuv_to_rgb(y: torch.Tensor, uv: torch.Tensor, fmt: YuvFormat) -> torch.Tensor:
    """Convert full-resolution planar YUV to RGB.

    Args:
        y: ``(N, 1, H, W)`` float, code-normalised luma.
        uv: ``(N, 2, H, W)`` float, code-normalised Cb, Cr at full resolution (upsample
            subsampled chroma first).
        fmt: the stream's matrix, range and bit depth.

    Returns:
        ``(N, 3, H, W)`` float RGB, not clamped (out-of-gamut YUV gives values outside [0, 1]).
    """
    import torch

    kr, kb = MATRIX_COEFFICIENTS[fmt.matrix]
    kg = 1.0 - kr - kb
    yy, c = _unit_yuv(y, uv, fmt)
    cb, cr = c[:, 0:1], c[:, 1:2]
    r = yy + 2.0 * (1.0 - kr) * cr
    b = yy + 2.0 * (1.0 - kb) * cb
    g = (yy - kr * r - kb * b) / kg
    return torch.cat([r, g, b], dim=1)


def rgb_to_yuv(rgb: torch.Tensor, fmt: YuvFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert RGB to full-resolution planar YUV (inverse of :func:`yuv_to_rgb`).

    Args:
        rgb: ``(N, 3, H, W)`` float RGB in [0, 1].

    Returns:
        ``(y, uv)``: ``(N, 1, H, W)`` and ``(N, 2, H, W)`` code-normalised float.
    """
    import torch

    kr, kb = MATRIX_COEFFICIENTS[fmt.matrix]
    kg = 1.0 - kr - kb
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    yy = kr * r + kg * g + kb * b
    cb = (b - yy) / (2.0 * (1.0 - kb))
    cr = (r - yy) / (2.0 * (1.0 - kr))
    return _norm_yuv(yy, torch.cat([cb, cr], dim=1), fmt)
