"""The compute stage of an interpolation baseline on 8-bit planes, without torch.

When the model is an interpolation baseline (``bicubic``, ``lanczos``) and nothing needs
float planes (the CPU, 8-bit in and out, no tiles, no colour matching), a batch is the
baseline's 8-bit kernel on luma (:class:`~vidsr.models.interp.Interpolator`) and
OpenCV's fixed-point resize on chroma: what
:class:`~vidsr.engine.processor.FrameProcessor`'s ``integer`` kernel does, here for a run
that never loads torch (start-up without its import, see the README). The plane
upscaling is a :class:`Resampler`: :class:`ExactResampler` (the MATLAB-exact kernel, the
default) or :class:`~vidsr.engine.swscale.SwscaleResampler` (FFmpeg's scaler,
``--resampler swscale``); the frames' order, timestamps and metadata are the pipeline's,
whichever runs.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from vidsr.engine.formats import PlaneFormats
from vidsr.engine.pending import PendingBatch
from vidsr.media.planes import HostFrame, Planes, chroma_size
from vidsr.models.interp import Interpolator


def resize_u8(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV resize of an 8-bit chroma plane to ``size = (H, W)``: bicubic up, area down."""
    h, w = size
    mode = cv2.INTER_CUBIC if h >= plane.shape[0] else cv2.INTER_AREA
    return cv2.resize(plane, (w, h), interpolation=mode)


def integer_formats(formats: PlaneFormats) -> bool:
    """Whether ``formats`` suit the 8-bit kernel: 8-bit codes in and out."""
    return formats.in_fmt.bits == 8 and formats.out_fmt.bits == 8


class Resampler(Protocol):
    """Upscales one frame's 8-bit ``(Y, U, V)`` planes; ``name`` says which (``exact``,
    ``swscale``) for the run's summary."""

    name: str

    def resample(self, planes: Planes) -> Planes: ...


class ExactResampler:
    """The MATLAB-exact kernel on luma (:meth:`Interpolator.upsample_u8`) and OpenCV's
    fixed-point resize on chroma (:func:`resize_u8`), to the output format's chroma size.

    Args:
        model: the baseline's 8-bit form.
        out_format: the output work format name (decides the chroma plane size).
    """

    name = "exact"

    def __init__(self, model: Interpolator, out_format: str) -> None:
        self.model = model
        self.out_format = out_format

    def resample(self, planes: Planes) -> Planes:
        """uint8 ``(Y, U, V)`` in, the upscaled uint8 ``(Y, U, V)`` out."""
        y, u, v = planes
        big_y = self.model.upsample_u8(y)
        ch, cw = chroma_size(self.out_format, big_y.shape[0], big_y.shape[1])
        chroma = [c if c.shape == (ch, cw) else resize_u8(c, (ch, cw)) for c in (u, v)]
        return big_y, chroma[0], chroma[1]


class IntegerProcessor:
    """Upscales batches of 8-bit :class:`HostFrame` with an interpolation baseline, on
    the calling thread (the kernel's OpenCV calls thread themselves).

    Args:
        model: the baseline's 8-bit form.
        formats: the input and output planes (8-bit: :func:`integer_formats`).
        resampler: what upscales each frame's planes; ``None`` for the exact kernel
            (:class:`ExactResampler` over ``model``).

    Attributes:
        kernel / schedule: ``integer`` and ``inline``, as a
            :class:`~vidsr.engine.processor.FrameProcessor` would report them.
        tile / colour_stage: ``None`` (this stage neither tiles nor matches colour).
        precision / precision_label: 8-bit integer arithmetic, reported as ``fp32`` (it
            is exact: nothing was rounded to a narrower float).
        max_in_flight: 1 (each batch is done when submitted).
    """

    kernel = "integer"
    schedule = "inline"
    tile = None
    colour_stage = None
    max_in_flight = 1
    precision = precision_label = "fp32"

    def __init__(
        self, model: Interpolator, formats: PlaneFormats, resampler: Resampler | None = None
    ) -> None:
        if not integer_formats(formats):
            raise ValueError("the 8-bit interpolation stage needs 8-bit input and output")
        self.model = model
        self.formats = formats
        self.resampler = resampler or ExactResampler(model, formats.out_format)

    def process(self, frames: list[HostFrame]) -> list[Planes]:
        """Per-frame ``(Y, U, V)`` uint8 planes, each frame's by :attr:`resampler` (the
        exact one: luma by the baseline's 8-bit kernel, chroma resized to the output
        format's chroma size, bicubic up, area down)."""
        return [self.resampler.resample(frame.planes) for frame in frames]

    def submit(self, frames: list[HostFrame]) -> PendingBatch:
        """Upscale a batch at once (see :meth:`process`)."""
        return PendingBatch.ready(self.process(frames))

    def close(self) -> None:
        """Nothing to stop (no worker threads)."""
