"""MATLAB ``rgb2ycbcr`` luma, as the super-resolution evaluation protocol defines it.

Kept tiny and local so training does not depend on the pipeline's colour module.
"""

from __future__ import annotations

import numpy as np
import torch

# BT.601 studio-range luma weights from MATLAB rgb2ycbcr, for 8-bit code values.
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def rgb_u8_to_y(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB -> ``(...)`` float32 Y code values in [16, 235] (not rounded)."""
    x = rgb.astype(np.float32)
    return 16.0 + _Y_WEIGHTS[0] * x[..., 0] + _Y_WEIGHTS[1] * x[..., 1] + _Y_WEIGHTS[2] * x[..., 2]


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` float RGB in [0, 1] -> ``(N, 1, H, W)`` Y / 255 (about [0.063, 0.92])."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return (16.0 + 255.0 * (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b)) / 255.0
