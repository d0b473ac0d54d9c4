"""Run a super-resolution function over overlapping tiles and stitch the centres.

Each tile is cut from the low-resolution input with ``overlap`` extra pixels of real
context on every side that has a neighbour; only the centre of each upscaled tile
(the part that corresponds to the tile without its overlap) is kept. With ``overlap``
at least the network's receptive radius, the result equals the untiled output up to
floating-point noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


def tile_spans(length: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(core_start, core_end, ctx_start, ctx_end)`` covering ``range(length)``.

    Cores partition the axis into pieces of at most ``tile``; contexts extend each core
    by ``overlap`` on both sides, clipped to the axis.
    """
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    start = 0
    while start < length:
        end = min(start + tile, length)
        yield start, end, max(0, start - overlap), min(length, end + overlap)
        start = end


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    overlap: int,
    out_device: torch.device | None = None,
) -> torch.Tensor:
    """Apply ``fn`` (an x``scale`` upscaler) to ``x`` tile by tile.

    Args:
        fn: maps ``(N, C, h, w)`` to ``(N, C', scale*h, scale*w)``.
        x: ``(N, C, H, W)`` input; may live on the host while ``fn`` moves each tile to
            its device, so that a large frame is never uploaded whole.
        scale: integer upscaling factor of ``fn``.
        tile: core tile size in input pixels.
        overlap: context pixels added around each core (>= the net's receptive radius).
        out_device: where the stitched output lives (default: ``x``'s device).

    Returns:
        ``(N, C', scale*H, scale*W)`` on ``out_device``.
    """
    n, _, h, w = x.shape
    out: torch.Tensor | None = None
    for ys, ye, cys, cye in tile_spans(h, tile, overlap):
        for xs, xe, cxs, cxe in tile_spans(w, tile, overlap):
            piece = fn(x[:, :, cys:cye, cxs:cxe])
            if out is None:
                shape = (n, piece.shape[1], h * scale, w * scale)
                out = torch.empty(shape, dtype=piece.dtype, device=out_device or x.device)
            top, left = (ys - cys) * scale, (xs - cxs) * scale
            core = piece[:, :, top : top + (ye - ys) * scale, left : left + (xe - xs) * scale]
            out[:, :, ys * scale : ye * scale, xs * scale : xe * scale] = core.to(out.device)
    assert out is not None  # h, w > 0
    return out
