"""The stateful compute path: a recurrent model stepped over the frames of a clip, in order.

A recurrent (``stateful``) model carries a state from frame to frame
(:meth:`~vidsr.models.contract.SRModel.step`), so frames of one clip cannot be batched or
run side by side: :class:`StatefulRunner` steps them one at a time, strictly in the order
they come. What is batched or spread over CPU workers instead is the *tiles of one frame*:

- the tile grid (:class:`TileGrid`) is fixed for the clip and each tile keeps its own
  state; the tiles are split once per clip into fixed *chunks*, one model call each;
- on a GPU a chunk holds as many tiles as fit a pixel budget, stacked into one
  ``(T, C, th, tw)`` batch: every tile window then has the same size (windows at the
  edges are shifted inwards rather than cut short, :func:`fixed_spans`);
- on the CPU a chunk is one tile (its activations should stay in cache), windows cut
  short at the edges as single-frame tiling cuts them (:func:`~vidsr.engine.tiling.
  tile_spans`: no more pixels computed than for a single-frame model); with CPU workers the
  chunks of a frame run side by side and all of them finish before the next frame starts,
  so no tile ever sees its frames out of order.

The state is reset (the model's own reset, ``state=None``) at the first frame the runner
sees, at every frame marked as starting a shot, and when the frame size changes. A run
that starts mid-video (``--resume``, a segment of a longer input) therefore starts from the
reset state at its first frame instead of warming up on pre-roll frames: the state after
a few pre-roll frames would still differ from the uninterrupted run's (it depends on the
whole shot so far), so warming up buys approximate continuity at the price of decoding and
upscaling frames that are thrown away, plumbing that every source and sink would share;
the net is trained to start from the reset state at every cut, so a reset frame is a
valid output, only without the neighbours' detail for its first few frames.

Memory is constant in the clip's length: the state is one frame's worth of tensors (the
tile windows' overlap included), whatever the number of frames.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidsr.engine.tiling import tile_spans
from vidsr.models.contract import SRModel

log = logging.getLogger(__name__)
Span = tuple[int, int, int, int]  # core start, core end, window start, window end


def fixed_spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Tile spans along one axis whose windows all have the same size.

    Cores partition ``range(length)`` into pieces of at most ``tile``; each window is
    ``tile + 2 * overlap`` long (or the whole axis when that is no longer), placed with the
    core ``overlap`` pixels in and shifted inwards at the ends, so every core has at least
    ``overlap`` pixels of real context on each side that has a neighbour (a short last
    core whose window would be the previous one's joins that core).
    """
    if tile <= 0 or overlap < 0:
        raise ValueError(f"need tile > 0 and overlap >= 0, got {tile}, {overlap}")
    window = tile + 2 * overlap
    if length <= window:
        return [(0, length, 0, length)]
    spans: list[Span] = []
    for start in range(0, length, tile):
        ctx = min(max(0, start - overlap), length - window)
        end = min(start + tile, length)
        if spans and spans[-1][2] == ctx:  # the same window as the last core's: one tile
            spans[-1] = (spans[-1][0], end, ctx, ctx + window)
        else:
            spans.append((start, end, ctx, ctx + window))
    return spans


def even_tile(length: int, tile: int) -> int:
    """The core size that cuts ``length`` into as many pieces as ``tile`` does, all of
    about one size (the last is shorter by the rounding), so that tiles shared among
    workers take equal time: 640 px at ``tile`` 384 gives cores of 320 + 320, not
    384 + 256, whose slower tile every frame would wait for."""
    pieces = -(-length // tile)
    return -(-length // pieces)


@dataclass(frozen=True)
class TileGrid:
    """A frame cut into tile windows (fixed for a clip), row-major."""

    rows: tuple[Span, ...]
    cols: tuple[Span, ...]

    @classmethod
    def whole(cls, height: int, width: int) -> TileGrid:
        return cls(((0, height, 0, height),), ((0, width, 0, width),))

    @classmethod
    def tiled(
        cls, height: int, width: int, tile: int, overlap: int, same_size: bool = True
    ) -> TileGrid:
        """Windows all of one size (:func:`fixed_spans`), or cut short at the frame's
        edges (``same_size=False``: :func:`~vidsr.engine.tiling.tile_spans`); cores of
        at most ``tile``, evened out along each axis (:func:`even_tile`)."""
        spans = fixed_spans if same_size else tile_spans
        rows = spans(height, even_tile(height, tile), overlap)
        cols = spans(width, even_tile(width, tile), overlap)
        return cls(tuple(rows), tuple(cols))

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def cut(self, frame: torch.Tensor) -> list[torch.Tensor]:
        """``(1, C, H, W)`` -> the windows, each ``(1, C, th, tw)`` (views), row-major."""
        return [frame[:, :, r[2] : r[3], c[2] : c[3]] for r in self.rows for c in self.cols]

    def stitch(self, windows: Sequence[torch.Tensor], scale: int, out: torch.Tensor) -> None:
        """Write the cores of upscaled windows (each ``(C, s*th, s*tw)``) into ``out``
        ``(1, C, s*H, s*W)``."""
        s = scale
        for i, (r, c) in enumerate((r, c) for r in self.rows for c in self.cols):
            top, left = (r[0] - r[2]) * s, (c[0] - c[2]) * s
            core = windows[i][:, top : top + (r[1] - r[0]) * s, left : left + (c[1] - c[0]) * s]
            out[0, :, r[0] * s : r[1] * s, c[0] * s : c[1] * s] = core


class StatefulRunner:
    """Steps a recurrent model over the frames of a clip, one frame at a time, in order.

    Args:
        model: a stateful :class:`SRModel` (on its device, in eval mode).
        tile: tile core size in input pixels, or ``None`` for whole frames.
        call_pixels: input pixels per model call on a GPU (tiles are grouped up to it);
            ``None``: one tile per call (the CPU).
        workers: CPU threads that run the chunks of a frame side by side (1: inline).
        shrink: given the current tile size and an out-of-memory error, the smaller tile
            size to retry with (it raises when there is none); the grid changes, so the
            state is reset.
        context: called around each model call (autocast, inference mode).

    Attributes:
        resets: frames the state was reset at so far.
    """

    def __init__(
        self,
        model: SRModel,
        tile: int | None,
        *,
        call_pixels: int | None = None,
        workers: int = 1,
        shrink: Callable[[int, torch.OutOfMemoryError], int] | None = None,
        context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        if not model.stateful:
            raise ValueError(f"{model.name} is not a recurrent model")
        self.model = model
        self.tile = tile
        self.call_pixels = call_pixels
        self._shrink = shrink
        self._context = context
        self._pool = ThreadPoolExecutor(workers, "vidsr-tiles") if workers > 1 else None
        self._size: tuple[int, int] | None = None
        self._grid: TileGrid | None = None
        self._chunks: list[slice] = []
        self._states: list[torch.Tensor | None] = []
        self.resets = 0

    def close(self) -> None:
        """Stop the worker threads (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, x: torch.Tensor, starts: Sequence[bool]) -> torch.Tensor:
        """Upscale the next frames of the clip, in order.

        Args:
            x: ``(N, C, h, w)`` float in ``[0, 1]``, the next ``N`` frames in order.
            starts: per frame, whether it starts a shot (the state is reset there).

        Returns:
            ``(N, C, s*h, s*w)`` float in ``[0, 1]``, on ``x``'s device.
        """
        s = self.model.scale
        n, c, h, w = x.shape
        out = x.new_empty((n, c, h * s, w * s), dtype=torch.float32)
        for i in range(n):
            if self.resets_at(bool(starts[i]), (h, w)):
                self.reset((h, w))
            out[i : i + 1] = self._frame(x[i : i + 1])
        return out

    def resets_at(self, starts_shot: bool, size: tuple[int, int]) -> bool:
        """Whether the state is reset before a frame: the first frame, a shot's first
        frame, or a new frame size."""
        return starts_shot or self._grid is None or size != self._size

    def reset(self, size: tuple[int, int]) -> None:
        """Forget the state; the next frame, of ``size = (h, w)``, starts a clip."""
        h, w = size
        batched = self.call_pixels is not None
        grid = TileGrid.tiled(h, w, self.tile, self._overlap(), batched) if self.tile else None
        self._size, self._grid = size, grid or TileGrid.whole(h, w)
        per_call = self._tiles_per_call()
        count = len(self._grid)
        self._chunks = [slice(i, min(i + per_call, count)) for i in range(0, count, per_call)]
        self._states = [None] * len(self._chunks)
        self.resets += 1

    def _overlap(self) -> int:
        return max(self.model.receptive_radius, 4)

    def _tiles_per_call(self) -> int:
        if self.call_pixels is None or self._grid is None:
            return 1
        rows, cols = self._grid.rows[0], self._grid.cols[0]
        return max(1, self.call_pixels // ((rows[3] - rows[2]) * (cols[3] - cols[2])))

    def _frame(self, frame: torch.Tensor) -> torch.Tensor:
        """One frame ``(1, C, h, w)`` through every chunk of tiles; retried on smaller
        tiles (from the reset state) when the device runs out of memory."""
        while True:
            try:
                return self._step_tiles(frame)
            except torch.OutOfMemoryError as e:
                if self._shrink is None:
                    raise
                assert self._size is not None
                self.tile = self._shrink(self.tile or max(self._size), e)
                log.warning("recurrent state reset: tiles of %d px from now on", self.tile)
                self.reset(self._size)

    def _step_tiles(self, frame: torch.Tensor) -> torch.Tensor:
        assert self._grid is not None
        windows = self._grid.cut(frame)
        jobs = range(len(self._chunks))
        if self._pool is not None and len(self._chunks) > 1:
            pieces = list(self._pool.map(lambda k: self._step_chunk(k, windows), jobs))
        else:
            pieces = [self._step_chunk(k, windows) for k in jobs]
        s = self.model.scale
        out = frame.new_empty((1, frame.shape[1], frame.shape[2] * s, frame.shape[3] * s))
        self._grid.stitch([tile for piece in pieces for tile in piece], s, out)
        return out

    def _step_chunk(self, k: int, windows: list[torch.Tensor]) -> torch.Tensor:
        """Chunk ``k``'s tiles one step on: only this call touches ``self._states[k]``."""
        x = torch.cat(windows[self._chunks[k]])
        with torch.inference_mode(), self._context():
            sr, self._states[k] = _padded_step(self.model, x, self._states[k])
        return sr.float()


def _padded_step(
    model: SRModel, x: torch.Tensor, state: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`SRModel.step` on ``x`` padded (replicate) up to the model's size multiple;
    the state stays at the padded size (the same every frame of a clip)."""
    h, w = x.shape[-2:]
    m = model.multiple_of
    pad_h, pad_w = (-h) % m, (-w) % m
    if not (pad_h or pad_w):
        return model.step(x, state)
    sr, state = model.step(F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"), state)
    return sr[..., : h * model.scale, : w * model.scale], state
