"""Side-by-side comparison images: the same LR image upscaled by several models, next to
the ground truth, each panel labelled with its model and Y-PSNR (the README figure).

The LR image is made as ``vidsr eval`` makes it (mod-crop, MATLAB-compatible bicubic), so
the figures in the labels are the evaluation protocol's, measured on the crop shown.
"""

from __future__ import annotations

import numpy as np
import torch

from vidsr.errors import OptionError
from vidsr.eval.evaluate import upscale_rgb
from vidsr.eval.metrics import psnr_y
from vidsr.eval.resize import bicubic_downscale, modcrop
from vidsr.media.panels import GAP, LABEL_HEIGHT, Panel, render_panels
from vidsr.models.contract import SRModel

__all__ = ["GAP", "LABEL_HEIGHT", "Panel", "comparison_panels", "render_panels"]


def comparison_panels(
    hr: np.ndarray,
    models: list[SRModel],
    *,
    crop: tuple[int, int, int, int] | None = None,
    device: torch.device | str = "cpu",
) -> list[Panel]:
    """Upscale the LR version of ``hr`` with each model; the last panel is ``hr`` itself.

    Args:
        hr: ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grayscale) ground truth.
        models: models of one scale, e.g. ``bicubic``, ``srcnn``, ``perceptual``.
        crop: ``(x, y, width, height)`` region of the mod-cropped HR image to show.
        device: where the models run.

    Raises:
        OptionError: no models, mixed scales, or a crop outside the image.
    """
    if not models:
        raise OptionError("compare needs at least one model")
    scale = models[0].scale
    if any(m.scale != scale for m in models):
        raise OptionError(f"all models must share one scale, got {[m.scale for m in models]}")
    if hr.ndim == 2:
        hr = np.repeat(hr[:, :, None], 3, axis=2)
    hr = modcrop(hr, scale)
    lr = bicubic_downscale(hr, scale)
    h, w = hr.shape[:2]
    x0, y0, cw, ch = crop if crop is not None else (0, 0, w, h)
    if cw <= 2 * scale or ch <= 2 * scale or x0 < 0 or y0 < 0 or x0 + cw > w or y0 + ch > h:
        raise OptionError(f"crop {x0},{y0},{cw},{ch} does not fit in the {w}x{h} image")
    region = (slice(y0, y0 + ch), slice(x0, x0 + cw))

    panels = []
    for model in models:
        sr = upscale_rgb(model.to(device).eval(), lr, device)[region]
        score = psnr_y(sr, hr[region], crop=scale)
        panels.append(Panel(f"{model.name} x{scale}", sr, score))
    panels.append(Panel("ground truth", np.ascontiguousarray(hr[region]), None))
    return panels
