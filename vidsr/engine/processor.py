"""The compute stage: a batch of host frames in, upscaled planes out.

Runs on one thread (all device work stays there). It uploads planes, converts only as
much colour as the model needs (luma models never see RGB; their chroma is upscaled
with bicubic), runs the model (tiled when asked), applies colour matching and returns
integer planes for the encoder. On CUDA, :meth:`FrameProcessor.submit` returns before
the GPU has finished, so the runner can prepare the next batch meanwhile (see
:mod:`vidsr.engine.transfer`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidsr.colour.convert import YuvFormat, codes_to_norm, norm_to_codes, rgb_to_yuv, yuv_to_rgb
from vidsr.device import autocast_dtype, inference_context
from vidsr.errors import DeviceError
from vidsr.models.baselines import PolyphaseUpsampler, resize_plane
from vidsr.models.contract import SRModel
from vidsr.media.planes import HostFrame, Planes, chroma_size
from vidsr.engine.tiling import tiled_apply
from vidsr.engine.transfer import Downloader, PendingBatch, Uploader

MIN_TILE = 64  # smallest tile the out-of-memory retry goes down to, in input pixels
log = logging.getLogger(__name__)


class ColourStage(Protocol):
    """Colour correction of upscaled planes against the low-resolution source."""

    def apply(
        self,
        ref_y: torch.Tensor,
        ref_uv: torch.Tensor,
        out_y: torch.Tensor,
        out_uv: torch.Tensor,
        new_shot: Sequence[bool],
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class FrameProcessor:
    """Upscales batches of :class:`HostFrame` on ``device``.

    Args:
        model: the loaded model (moved to ``device`` here).
        device: compute device.
        in_fmt / out_fmt: matrix, range and bits of input and output planes.
        out_format: the output work format name (decides the chroma plane size).
        tile: tile size in input pixels, or ``None``.
        colour_stage: optional colour matching applied to every batch.
        compile_model: run the model through ``torch.compile`` (``DeviceError`` when it
            cannot compile here, e.g. no C++ compiler for the CPU backend).
        cpu_workers: on the CPU, learned models run batches on this many worker threads
            side by side (each model call then best uses one torch thread; see
            ``vidsr.device``). The colour stage and the hand-over stay in frame order on
            the calling thread. Interpolation baselines ignore it: their OpenCV kernels
            thread themselves, and extra workers only made them fight the encoder (1080p
            -> 4K bicubic: 15.2 fps with two workers against 19.1 with one).
    """

    def __init__(
        self,
        model: SRModel,
        device: torch.device,
        in_fmt: YuvFormat,
        out_fmt: YuvFormat,
        out_format: str,
        tile: int | None = None,
        colour_stage: ColourStage | None = None,
        compile_model: bool = False,
        cpu_workers: int = 1,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.in_fmt = in_fmt
        self.out_fmt = out_fmt
        self.out_format = out_format
        self.tile = tile
        self.colour_stage = colour_stage
        self.half = autocast_dtype(device, model.supports_half)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.forward: torch.nn.Module | object = self.model
        self.compiled = compile_model
        self._first_call = threading.Lock()  # workers wait for one compilation, not race it
        self._warm = False
        if compile_model:
            self.forward = torch.compile(self.model, dynamic=True)
        self.uploader = Uploader(device)
        self.downloader = Downloader(device) if device.type == "cuda" else None
        self.workers: ThreadPoolExecutor | None = None
        if device.type == "cpu" and cpu_workers > 1 and model.family != "baseline":
            self.workers = ThreadPoolExecutor(cpu_workers, thread_name_prefix="vidsr-model")
        # batches the runner may keep submitted before collecting the oldest
        self.max_in_flight = cpu_workers if self.workers is not None else 1

    def close(self) -> None:
        """Stop the CPU worker threads (idempotent)."""
        if self.workers is not None:
            self.workers.shutdown(wait=True, cancel_futures=True)
            self.workers = None

    def _upload(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Stack same-sized host planes to ``(N, 1, h, w)`` code-normalised float32 on the device."""
        return self._normalise(self.uploader.upload(arrays))[:, None]

    def _normalise(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer codes (uint8, or uint16 carried as int16 bits) to code-normalised float."""
        if codes.dtype == torch.int16:
            codes = codes.to(torch.int32) & 0xFFFF
        return codes_to_norm(codes, self.in_fmt.bits)

    def _tile_from_host(self, tile: torch.Tensor) -> torch.Tensor:
        """Model on one tile of host codes: only the tile goes to the device."""
        return self._net(self._normalise(tile.to(self.device, non_blocking=True)))

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        """The model (compiled when asked); a failed compilation is a one-line error."""
        if not self.compiled:
            return self.model(x)
        try:
            if not self._warm:
                with self._first_call:
                    out = self.forward(x)  # type: ignore[operator]
                    self._warm = True
                    return out
            return self.forward(x)  # type: ignore[operator]
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # torch._dynamo / inductor failures come in many types
            if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise DeviceError(f"--compile failed on {self.device}: {str(e).splitlines()[0]}") from e
            raise

    def run_model(self, x: torch.Tensor, host_codes: bool = False) -> torch.Tensor:
        """Model forward, float32 out on the device. Tiled when configured; when the device
        runs out of memory, retried with tiles half the size each time, down to
        ``MIN_TILE``. With ``host_codes``, ``x`` is integer codes on the host and each
        tile is uploaded and normalised on its own (tiled runs only)."""
        while True:
            try:
                with torch.inference_mode(), inference_context(self.device, self.half):
                    if self.tile:
                        overlap = max(self.model.receptive_radius, 4)
                        fn = self._tile_from_host if host_codes else self._net
                        out = tiled_apply(fn, x, self.model.scale, self.tile, overlap, out_device=self.device)
                    else:
                        out = self._net(x)
                return out.float()
            except torch.OutOfMemoryError as e:
                current = self.tile or max(x.shape[-2:])
                if current <= MIN_TILE:
                    raise DeviceError(
                        f"out of memory on {self.device} even with {current}px tiles; "
                        f"try --batch-size 1 or --device cpu"
                    ) from e
                self.tile = max(MIN_TILE, current // 2)
                log.warning("out of memory on %s; retrying with %dpx tiles", self.device, self.tile)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _integer_path(self) -> PolyphaseUpsampler | None:
        """The interpolation baseline to run on 8-bit codes directly, when nothing needs
        float planes: CPU, 8-bit in and out, luma model, no tiles, no colour matching."""
        net = self.model.net
        if (isinstance(net, PolyphaseUpsampler) and self.device.type == "cpu" and self.tile is None
                and self.colour_stage is None and self.in_fmt.bits == 8 and self.out_fmt.bits == 8):
            return net
        return None

    def _process_u8(self, frames: list[HostFrame], net: PolyphaseUpsampler) -> list[Planes]:
        """Baseline upscale of 8-bit planes without float conversion (see ``upsample_u8``);
        chroma by OpenCV's fixed-point bicubic resize, as the float path does in float."""
        out = []
        for frame in frames:
            y, u, v = frame.planes
            big_y = net.upsample_u8(y)
            ch, cw = chroma_size(self.out_format, big_y.shape[0], big_y.shape[1])
            chroma = tuple(
                c if c.shape == (ch, cw) else cv2.resize(c, (cw, ch), interpolation=cv2.INTER_CUBIC if ch >= c.shape[0] else cv2.INTER_AREA)
                for c in (u, v)
            )
            out.append((big_y, chroma[0], chroma[1]))
        return out

    def process(self, frames: list[HostFrame]) -> list[Planes]:
        """Upscale a batch; returns per-frame ``(Y, U, V)`` integer planes for the encoder."""
        integer_net = self._integer_path()
        if integer_net is not None:
            return self._process_u8(frames, integer_net)
        return self._finish(frames, *self._infer(frames))

    def submit(self, frames: list[HostFrame]) -> PendingBatch:
        """Start upscaling a batch. On CUDA this returns once the work is queued on the GPU
        (the download into pinned memory included); with CPU workers, once a worker has
        it; otherwise the batch is done at once. Collect batches in submission order."""
        if self.downloader is not None:
            out_y, out_uv = self._colour(frames, *self._infer(frames))
            bits = self.out_fmt.bits
            return self.downloader.start(norm_to_codes(out_y, bits), norm_to_codes(out_uv, bits), bits > 8)
        if self.workers is None:
            return PendingBatch.ready(self.process(frames))
        integer_net = self._integer_path()
        if integer_net is not None:
            future = self.workers.submit(self._process_u8, frames, integer_net)
            return PendingBatch(future.result, future.done)
        future = self.workers.submit(self._infer, frames)
        return PendingBatch(lambda: self._finish(frames, *future.result()), future.done)

    def _finish(self, frames: list[HostFrame], y: torch.Tensor | None, uv: torch.Tensor,
                out_y: torch.Tensor, out_uv: torch.Tensor) -> list[Planes]:
        """Colour-match (in frame order: the matcher follows shots) and download."""
        out_y, out_uv = self._colour(frames, y, uv, out_y, out_uv)
        return self._download(out_y, out_uv, len(frames))

    @torch.inference_mode()
    def _colour(self, frames: list[HostFrame], y: torch.Tensor | None, uv: torch.Tensor,
                out_y: torch.Tensor, out_uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.colour_stage is None or y is None:
            return out_y, out_uv
        return self.colour_stage.apply(y, uv, out_y, out_uv, [f.new_shot for f in frames])

    @torch.inference_mode()
    def _infer(self, frames: list[HostFrame]) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Upload, convert and run the model on a batch. Returns the input planes ``y``
        ``(N, 1, h, w)`` (``None`` when tiled without a colour stage: never uploaded) and
        ``uv`` ``(N, 2, hc, wc)`` and the upscaled ``(N, 1, H, W)`` and ``(N, 2, Hc, Wc)``,
        all code-normalised float on the device. No shared state: safe to run on several
        worker threads at once."""
        luma = [f.planes[0] for f in frames]
        uv = self._upload([p for f in frames for p in f.planes[1:]]).view(len(frames), 2, *frames[0].planes[1].shape)
        h, w = luma[0].shape
        s = self.model.scale
        out_h, out_w = h * s, w * s
        out_chroma = chroma_size(self.out_format, out_h, out_w)
        if self.model.colour == "luma" and self.tile:
            # Tiles go to the device one at a time, never the whole luma plane; the colour
            # stage's low-resolution reference is uploaded only when colour matching is on.
            stacked = np.stack(luma)
            host = torch.from_numpy(stacked.view(np.int16) if stacked.dtype == np.uint16 else stacked)
            out_y = self.run_model(host[:, None], host_codes=True)
            out_uv = resize_plane(uv, out_chroma)
            y = self._upload(luma) if self.colour_stage is not None else None
            return y, uv, out_y, out_uv
        y = self._upload(luma)  # (N, 1, h, w)
        if self.model.colour == "luma":
            out_y = self.run_model(y)
            out_uv = resize_plane(uv, out_chroma)
        else:
            uv_full = uv if uv.shape[-2:] == (h, w) else resize_plane(uv, (h, w))
            rgb = yuv_to_rgb(y, uv_full, self.in_fmt).clamp_(0.0, 1.0)
            out_rgb = self.run_model(rgb)
            out_y, out_uv = rgb_to_yuv(out_rgb, self.out_fmt)
            if out_chroma != (out_h, out_w):
                out_uv = F.interpolate(out_uv, size=out_chroma, mode="area")
        return y, uv, out_y, out_uv

    def _download(self, out_y: torch.Tensor, out_uv: torch.Tensor, n: int) -> list[Planes]:
        bits = self.out_fmt.bits
        y_codes = norm_to_codes(out_y, bits).cpu().numpy()
        uv_codes = norm_to_codes(out_uv, bits).cpu().numpy()
        if bits > 8:
            y_codes, uv_codes = y_codes.astype(np.uint16), uv_codes.astype(np.uint16)
        return [(y_codes[i, 0], uv_codes[i, 0], uv_codes[i, 1]) for i in range(n)]
