"""The compute stage: a batch of host frames in, upscaled planes out.

It uploads planes, converts only as much colour as the model needs (luma models never
see RGB; their chroma is upscaled with bicubic), runs the model (tiled when asked),
applies colour matching and returns integer planes for the encoder.

How a batch is computed is chosen once, when the processor is built, on two axes:

- the kernel: ``integer`` (a net with an 8-bit integer path, see
  :attr:`~vidsr.models.contract.SRModel.integer_path`, on the CPU with nothing that
  needs float planes) or ``float`` (upload, model, colour, download);
- the schedule: ``device`` (CUDA: :meth:`FrameProcessor.submit` returns before the GPU
  has finished, so the runner can prepare the next batch meanwhile; see
  :mod:`vidsr.engine.transfer`), ``workers`` (CPU worker threads run batches side by
  side) or ``inline`` (each batch done at once on the calling thread).

Device work for the ``device`` and ``inline`` schedules stays on the calling thread.

A recurrent (``stateful``) model takes its own small path
(:class:`~vidsr.engine.recurrent.StatefulRunner`): its frames are stepped one at a time in
order, on the ``device`` or ``inline`` schedule; CPU workers share the tiles of each frame
instead of whole batches.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidsr.colour.convert import codes_to_norm, norm_to_codes, rgb_to_yuv, yuv_to_rgb
from vidsr.config import Precision
from vidsr.device import inference_context
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.integer import resize_u8
from vidsr.engine.precision import (
    autocast_dtype_for,
    describe,
    resolve_precision,
    with_bf16_convolutions,
)
from vidsr.engine.recurrent import StatefulRunner
from vidsr.engine.tiling import tiled_apply
from vidsr.engine.transfer import Downloader, PendingBatch, Uploader

__all__ = ["FrameProcessor", "PlaneFormats", "ProcessorOptions"]
from vidsr.errors import DeviceError, OptionError
from vidsr.media.planes import HostFrame, Planes, chroma_size
from vidsr.models.baselines import resize_plane
from vidsr.models.contract import SRModel
from vidsr.models.folding import fold_reconstruction

Kernel = Literal["integer", "float"]
Schedule = Literal["device", "workers", "inline"]
MIN_TILE = 64  # smallest tile the out-of-memory retry goes down to, in input pixels
# Input pixels per call of a recurrent model on CUDA (its tiles are grouped up to this).
CUDA_CALL_PIXELS = 8_000_000
log = logging.getLogger(__name__)


class ColourStage(Protocol):
    """Colour correction of upscaled planes against the low-resolution source, in two
    steps: ``measure`` (stateless: on the worker that ran the model) and ``apply_codes``
    (in frame order: the correction, rounded to integer codes)."""

    def measure(
        self, ref_y: torch.Tensor, ref_uv: torch.Tensor, out_y: torch.Tensor, out_uv: torch.Tensor
    ) -> torch.Tensor | None: ...

    def apply_codes(
        self,
        measured: torch.Tensor | None,
        out_y: torch.Tensor,
        out_uv: torch.Tensor,
        new_shot: Sequence[bool],
        bits: int,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class ProcessorOptions:
    """How a :class:`FrameProcessor` runs.

    Attributes:
        tile: tile size in input pixels, or ``None`` for whole frames.
        colour_stage: optional colour matching applied to every batch.
        compile_model: run the model through ``torch.compile`` (``DeviceError`` when it
            cannot compile here, e.g. no C++ compiler for the CPU backend).
        cpu_workers: on the CPU, learned models run batches on this many worker threads
            side by side (each model call then best uses one torch thread; see
            ``vidsr.device``). The colour stage and the hand-over stay in frame order on
            the calling thread. Interpolation baselines ignore it: their OpenCV kernels
            thread themselves, and extra workers only made them fight the encoder. A
            recurrent model's workers share the tiles of each frame instead (frames stay
            in order, see :mod:`vidsr.engine.recurrent`).
        precision: ``auto``, ``fp32`` or ``bf16`` (see
            :func:`vidsr.engine.precision.resolve_precision`).
    """

    tile: int | None = None
    colour_stage: ColourStage | None = None
    compile_model: bool = False
    cpu_workers: int = 1
    precision: Precision = "auto"


@dataclass(frozen=True)
class _Inference:
    """One batch through the float kernel, all code-normalised float on the device: the
    input planes ``y`` ``(N, 1, h, w)`` (``None`` when tiled without a colour stage: never
    uploaded) and ``uv`` ``(N, 2, hc, wc)``, the upscaled ``out_y`` ``(N, 1, H, W)`` and
    ``out_uv`` ``(N, 2, Hc, Wc)``; ``retiled``: the smaller tile size an out-of-memory
    error forced, for the calling thread to adopt (``None`` when none did); ``measured``:
    the colour stage's histograms of the batch (``None`` without a colour stage)."""

    y: torch.Tensor | None
    uv: torch.Tensor
    out_y: torch.Tensor
    out_uv: torch.Tensor
    retiled: int | None = None
    measured: torch.Tensor | None = None


@dataclass(frozen=True)
class _KernelSteps:
    """A kernel as two steps: ``work(frames, tile)`` touches no shared state (it may run
    on a worker thread); ``finish(frames, work_result)`` runs on the calling thread, in
    frame order (the colour matcher follows shots)."""

    name: Kernel
    work: Callable[[list[HostFrame], int | None], Any]
    finish: Callable[[list[HostFrame], Any], list[Planes]]


class _CompiledForward:
    """``torch.compile`` of a model. The first call (the compilation) runs alone: worker
    threads wait for it instead of racing it. A failed compilation is a one-line
    :class:`DeviceError`."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self._compiled = torch.compile(model, dynamic=True)
        self._device = device
        self._first_call = threading.Lock()
        self._warm = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        try:
            if not self._warm:
                with self._first_call:
                    out = self._compiled(x)
                    self._warm = True
                    return out
            return self._compiled(x)
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # torch._dynamo / inductor failures come in many types
            if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
                first = str(e).splitlines()[0]
                raise DeviceError(f"--compile failed on {self._device}: {first}") from e
            raise


class FrameProcessor:
    """Upscales batches of :class:`HostFrame` on ``device``.

    Args:
        model: the loaded model (moved to ``device`` here).
        device: compute device.
        formats: the input and output planes.
        options: tiling, colour matching, compilation, CPU workers and precision.

    Attributes:
        precision: what the model computes in, ``fp32``, ``fp16`` or ``bf16``
            (:mod:`vidsr.engine.precision`: autocast on CUDA, bf16 convolutions on a CPU;
            ``model`` is then a converted copy of the one given); ``precision_label``
            says it in words (``bf16 convolutions``).
        folded: how many linear sub-pixel reconstructions the model runs folded into one
            LR conv (:func:`~vidsr.models.folding.fold_reconstruction`; 0: as loaded).
        kernel / schedule: how batches are computed (see the module doc), fixed here.
        tile: the tile size batches start with; an out-of-memory error halves it (down
            to ``MIN_TILE``) for the batches that follow.
        max_in_flight: batches the runner may keep submitted before collecting the oldest.
    """

    def __init__(
        self,
        model: SRModel,
        device: torch.device,
        formats: PlaneFormats,
        options: ProcessorOptions | None = None,
    ) -> None:
        options = options or ProcessorOptions()
        # A copy with any linear sub-pixel reconstruction folded into one LR conv (the
        # quality and temporal nets: about half their cost at x4, the same output).
        model, self.folded = fold_reconstruction(model)
        self.precision = resolve_precision(device, model.supports_half, options.precision)
        if device.type == "cpu" and self.precision == "bf16":
            model, converted = with_bf16_convolutions(model)
            if converted == 0:  # nothing to compute in bf16 (an interpolation baseline)
                self.precision = "fp32"
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.device = device
        self.formats = formats
        self.tile = options.tile
        self.colour_stage = options.colour_stage
        self.half = autocast_dtype_for(device, self.precision)
        self.precision_label = describe(device, self.precision)
        self._forward: Callable[[torch.Tensor], torch.Tensor] = (
            _CompiledForward(self.model, device) if options.compile_model else self.model
        )
        self.uploader = Uploader(device)
        self.downloader = Downloader(device) if device.type == "cuda" else None
        self.workers: ThreadPoolExecutor | None = None
        self.recurrent = self._recurrent(options) if model.stateful else None
        if (
            device.type == "cpu"
            and options.cpu_workers > 1
            and model.family != "baseline"
            and self.recurrent is None
        ):
            self.workers = ThreadPoolExecutor(options.cpu_workers, thread_name_prefix="vidsr-model")
        self.max_in_flight = options.cpu_workers if self.workers is not None else 1
        self._steps = self._choose_kernel()
        self.kernel: Kernel = self._steps.name
        self.schedule: Schedule = (
            "device"
            if self.downloader is not None
            else "workers"
            if self.workers is not None
            else "inline"
        )
        self._submit = {
            "device": self._submit_device,
            "workers": self._submit_workers,
            "inline": self._submit_inline,
        }[self.schedule]

    def _recurrent(self, options: ProcessorOptions) -> StatefulRunner:
        """The stateful path (:mod:`vidsr.engine.recurrent`): frames stepped in order,
        tiles of a frame batched on CUDA or spread over the CPU workers."""
        if options.compile_model:
            raise OptionError(
                f"--compile does not work with the recurrent model {self.model.name} yet "
                f"(it compiles the single-frame forward pass); leave it out"
            )
        cuda = self.device.type == "cuda"
        return StatefulRunner(
            self.model,
            self.tile,
            call_pixels=CUDA_CALL_PIXELS if cuda else None,
            workers=1 if cuda else options.cpu_workers,
            shrink=self._smaller_tile,
            context=lambda: inference_context(self.device, self.half),
        )

    def _choose_kernel(self) -> _KernelSteps:
        """The integer kernel when nothing needs float planes: a net with an integer
        path, on the CPU, 8-bit in and out, no tiles, no colour matching; a recurrent
        net's own steps (:meth:`_infer_recurrent`)."""
        fmts = self.formats
        if self.recurrent is not None:
            return _KernelSteps("float", self._infer_recurrent, self._finish)
        if (
            self.model.integer_path
            and self.device.type == "cpu"
            and self.tile is None
            and self.colour_stage is None
            and fmts.in_fmt.bits == 8
            and fmts.out_fmt.bits == 8
        ):
            return _KernelSteps("integer", self._process_u8, lambda _frames, planes: planes)
        return _KernelSteps("float", self._infer, self._finish)

    def close(self) -> None:
        """Stop the CPU worker threads (idempotent)."""
        if self.recurrent is not None:
            self.recurrent.close()
        if self.workers is not None:
            self.workers.shutdown(wait=True, cancel_futures=True)
            self.workers = None

    def process(self, frames: list[HostFrame]) -> list[Planes]:
        """Upscale a batch on this thread; returns per-frame ``(Y, U, V)`` integer planes
        for the encoder."""
        return self._steps.finish(frames, self._steps.work(frames, self.tile))

    def submit(self, frames: list[HostFrame]) -> PendingBatch:
        """Start upscaling a batch. On CUDA this returns once the work is queued on the GPU
        (the download into pinned memory included); with CPU workers, once a worker has
        it; otherwise the batch is done at once. Collect batches in submission order."""
        return self._submit(frames)

    def _submit_inline(self, frames: list[HostFrame]) -> PendingBatch:
        return PendingBatch.ready(self.process(frames))

    def _submit_workers(self, frames: list[HostFrame]) -> PendingBatch:
        assert self.workers is not None
        future = self.workers.submit(self._steps.work, frames, self.tile)
        return PendingBatch(lambda: self._steps.finish(frames, future.result()), future.done)

    def _submit_device(self, frames: list[HostFrame]) -> PendingBatch:
        assert self.downloader is not None
        y_codes, uv_codes = self._codes(frames, self._adopt(self._steps.work(frames, self.tile)))
        return self.downloader.start(y_codes, uv_codes, self.formats.out_fmt.bits > 8)

    def _adopt(self, result: _Inference) -> _Inference:
        """Keep a tile size an out-of-memory error forced for the batches that follow
        (calling thread only; tiles only ever get smaller)."""
        if result.retiled is not None and (self.tile is None or result.retiled < self.tile):
            self.tile = result.retiled
        return result

    def _finish(self, frames: list[HostFrame], result: _Inference) -> list[Planes]:
        """Colour-match (in frame order: the matcher follows shots) and download."""
        y_codes, uv_codes = self._codes(frames, self._adopt(result))
        y_host, uv_host = y_codes.cpu().numpy(), uv_codes.cpu().numpy()
        if self.formats.out_fmt.bits > 8:
            y_host, uv_host = y_host.astype(np.uint16), uv_host.astype(np.uint16)
        return [(y_host[i, 0], uv_host[i, 0], uv_host[i, 1]) for i in range(len(frames))]

    @torch.inference_mode()
    def _codes(self, frames: list[HostFrame], r: _Inference) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's integer output codes on the device, colour-matched when there is a
        colour stage (calling thread, frame order)."""
        bits = self.formats.out_fmt.bits
        if self.colour_stage is None or r.y is None:
            return norm_to_codes(r.out_y, bits), norm_to_codes(r.out_uv, bits)
        shots = [f.new_shot for f in frames]
        return self.colour_stage.apply_codes(r.measured, r.out_y, r.out_uv, shots, bits)

    def _measured(self, r: _Inference) -> _Inference:
        """``r`` with the colour stage's histograms (any thread: measuring reads no state)."""
        if self.colour_stage is None or r.y is None:
            return r
        measured = self.colour_stage.measure(r.y, r.uv, r.out_y, r.out_uv)
        return dataclasses.replace(r, measured=measured)

    def _process_u8(self, frames: list[HostFrame], _tile: int | None = None) -> list[Planes]:
        """The integer kernel (never tiled): 8-bit planes upscaled without float
        conversion (see ``SRModel.upsample_u8``); chroma by OpenCV's fixed-point bicubic
        resize, as the float kernel does in float."""
        out = []
        for frame in frames:
            y, u, v = frame.planes
            big_y = self.model.upsample_u8(y)
            ch, cw = chroma_size(self.formats.out_format, big_y.shape[0], big_y.shape[1])
            chroma = tuple(c if c.shape == (ch, cw) else resize_u8(c, (ch, cw)) for c in (u, v))
            out.append((big_y, chroma[0], chroma[1]))
        return out

    def _upload(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Stack same-sized host planes to ``(N, 1, h, w)`` code-normalised float32 on
        the device."""
        return self._normalise(self.uploader.upload(arrays))[:, None]

    def _normalise(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer codes (uint8, or uint16 carried as int16 bits) to code-normalised float."""
        if codes.dtype == torch.int16:
            codes = codes.to(torch.int32) & 0xFFFF
        return codes_to_norm(codes, self.formats.in_fmt.bits)

    def _tile_from_host(self, tile: torch.Tensor) -> torch.Tensor:
        """Model on one tile of host codes: only the tile goes to the device."""
        return self._forward(self._normalise(tile.to(self.device, non_blocking=True)))

    def run_model(
        self, x: torch.Tensor, tile: int | None, host_codes: bool = False
    ) -> tuple[torch.Tensor, int | None]:
        """Model forward, float32 out on the device, and the tile size it ran with.

        Tiled when ``tile`` is set; when the device runs out of memory, retried with
        tiles half the size each time, down to ``MIN_TILE`` (logged; the smaller size is
        returned, never stored). With ``host_codes``, ``x`` is integer codes on the host
        and each tile is uploaded and normalised on its own (tiled runs only)."""
        while True:
            try:
                with torch.inference_mode(), inference_context(self.device, self.half):
                    if tile:
                        overlap = max(self.model.receptive_radius, 4)
                        fn = self._tile_from_host if host_codes else self._forward
                        out = tiled_apply(
                            fn, x, self.model.scale, tile, overlap, out_device=self.device
                        )
                    else:
                        out = self._forward(x)
                return out.float(), tile
            except torch.OutOfMemoryError as e:
                tile = self._smaller_tile(tile or max(x.shape[-2:]), e)

    def _smaller_tile(self, current: int, error: torch.OutOfMemoryError) -> int:
        if current <= MIN_TILE:
            raise DeviceError(
                f"out of memory on {self.device} even with {current}px tiles; "
                f"try --batch-size 1 or --device cpu"
            ) from error
        smaller = max(MIN_TILE, current // 2)
        log.warning("out of memory on %s; retrying with %dpx tiles", self.device, smaller)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return smaller

    @torch.inference_mode()
    def _infer(self, frames: list[HostFrame], tile: int | None) -> _Inference:
        """The float kernel's work: upload, convert and run the model on a batch with
        tiles of ``tile`` (see :class:`_Inference`). Writes nothing on ``self``: safe to
        run on several worker threads at once."""
        luma = [f.planes[0] for f in frames]
        chroma = [p for f in frames for p in f.planes[1:]]
        uv = self._upload(chroma).view(len(frames), 2, *frames[0].planes[1].shape)
        h, w = luma[0].shape
        s = self.model.scale
        out_h, out_w = h * s, w * s
        out_chroma = chroma_size(self.formats.out_format, out_h, out_w)
        if self.model.colour == "luma" and tile:
            # Tiles go to the device one at a time, never the whole luma plane; the colour
            # stage's low-resolution reference is uploaded only when colour matching is on.
            stacked = np.stack(luma)
            host = torch.from_numpy(
                stacked.view(np.int16) if stacked.dtype == np.uint16 else stacked
            )
            out_y, used = self.run_model(host[:, None], tile, host_codes=True)
            y = self._upload(luma) if self.colour_stage is not None else None
            out_uv = resize_plane(uv, out_chroma)
            return self._measured(_Inference(y, uv, out_y, out_uv, _changed(tile, used)))
        y = self._upload(luma)  # (N, 1, h, w)
        if self.model.colour == "luma":
            out_y, used = self.run_model(y, tile)
            out_uv = resize_plane(uv, out_chroma)
        else:
            uv_full = uv if uv.shape[-2:] == (h, w) else resize_plane(uv, (h, w))
            rgb = yuv_to_rgb(y, uv_full, self.formats.in_fmt).clamp_(0.0, 1.0)
            out_rgb, used = self.run_model(rgb, tile)
            out_y, out_uv = rgb_to_yuv(out_rgb, self.formats.out_fmt)
            if out_chroma != (out_h, out_w):
                out_uv = F.interpolate(out_uv, size=out_chroma, mode="area")
        return self._measured(_Inference(y, uv, out_y, out_uv, _changed(tile, used)))

    @torch.inference_mode()
    def _infer_recurrent(self, frames: list[HostFrame], _tile: int | None) -> _Inference:
        """The float kernel for a recurrent net: as :meth:`_infer`, the model part
        stepped frame by frame in order (:class:`~vidsr.engine.recurrent.StatefulRunner`,
        which resets its state at frames marked ``new_shot``). Calling thread only."""
        assert self.recurrent is not None
        starts = [f.new_shot for f in frames]
        chroma = [p for f in frames for p in f.planes[1:]]
        uv = self._upload(chroma).view(len(frames), 2, *frames[0].planes[1].shape)
        y = self._upload([f.planes[0] for f in frames])
        h, w = y.shape[-2:]
        s = self.model.scale
        out_chroma = chroma_size(self.formats.out_format, h * s, w * s)
        if self.model.colour == "luma":
            out_y = self.recurrent.run(y, starts)
            return self._measured(_Inference(y, uv, out_y, resize_plane(uv, out_chroma)))
        uv_full = uv if uv.shape[-2:] == (h, w) else resize_plane(uv, (h, w))
        rgb = yuv_to_rgb(y, uv_full, self.formats.in_fmt).clamp_(0.0, 1.0)
        out_y, out_uv = rgb_to_yuv(self.recurrent.run(rgb, starts), self.formats.out_fmt)
        if out_chroma != (h * s, w * s):
            out_uv = F.interpolate(out_uv, size=out_chroma, mode="area")
        return self._measured(_Inference(y, uv, out_y, out_uv))


def _changed(before: int | None, after: int | None) -> int | None:
    """The tile size an out-of-memory retry moved to, or ``None`` when it did not move."""
    return after if after != before else None
