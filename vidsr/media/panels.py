"""Labelled picture grids (Pillow): panels laid left to right over label strips, rows
stacked top to bottom. Shared by ``vidsr compare`` and ``vidsr preview``.

Pictures are ``(H, W, 3)`` uint8 RGB throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidsr.errors import OptionError

LABEL_HEIGHT = 16
GAP = 4
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class Panel:
    """One tile: ``image`` is ``(H, W, 3)`` uint8 RGB; ``psnr`` is a Y-PSNR (dB) shown
    after the label, ``None`` for none."""

    label: str
    image: np.ndarray
    psnr: float | None = None


def render_panels(panels: list[Panel], *, zoom: int = 1) -> np.ndarray:
    """Lay panels (all of one size) left to right, enlarged ``zoom`` times (nearest
    neighbour, so pixels stay visible), each over a label strip. Returns ``(H', W', 3)``
    uint8 RGB."""
    if zoom < 1:
        raise OptionError(f"zoom must be >= 1, got {zoom}")
    if not panels:
        raise OptionError("nothing to render: no panels")
    ph, pw = panels[0].image.shape[:2]
    ph, pw = ph * zoom, pw * zoom
    canvas = Image.new(
        "RGB", (len(panels) * pw + (len(panels) - 1) * GAP, ph + LABEL_HEIGHT), _BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, panel in enumerate(panels):
        tile = Image.fromarray(panel.image).resize((pw, ph), Image.Resampling.NEAREST)
        left = i * (pw + GAP)
        canvas.paste(tile, (left, 0))
        text = panel.label if panel.psnr is None else f"{panel.label}  {panel.psnr:.2f} dB"
        draw.text((left + 2, ph + 2), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def render_grid(rows: list[list[Panel]]) -> np.ndarray:
    """Rows of panels (:func:`render_panels` each, all rows of one width) stacked top to
    bottom with a ``GAP`` between them. Returns ``(H, W, 3)`` uint8 RGB."""
    images = [render_panels(row) for row in rows]
    if not images:
        raise OptionError("nothing to render: no rows")
    width = images[0].shape[1]
    if any(image.shape[1] != width for image in images):
        raise OptionError("grid rows differ in width")
    height = sum(image.shape[0] for image in images) + GAP * (len(images) - 1)
    grid = np.full((height, width, 3), _BACKGROUND, np.uint8)
    top = 0
    for image in images:
        grid[top : top + image.shape[0]] = image
        top += image.shape[0] + GAP
    return grid
