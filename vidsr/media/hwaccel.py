"""Hardware video codecs: NVDEC decoding and NVENC encoding through PyAV (``--hwaccel``).

``none`` (the default) decodes and encodes in software. ``auto`` uses NVDEC for decoding
and, when no ``--codec`` was given, NVENC (``h264_nvenc``) for encoding wherever they
work on this machine and this input, and says so in the log and the run summary when
one of them is not available (an H100 or H200 has NVDEC but no NVENC, for example).
``cuda`` requires hardware decoding and fails with one line when it is not available.

Availability is tried, not guessed: NVDEC by decoding the input's first frame with
software fallback off, NVENC by opening the encoder at the output size.
"""

from __future__ import annotations

import fractions
import logging
from dataclasses import dataclass
from pathlib import Path

import av
from av.codec.hwaccel import HWAccel

from vidsr.config import DEFAULT_CODEC as SOFTWARE_ENCODER
from vidsr.config import HWACCEL_MODES
from vidsr.errors import DeviceError, OptionError

HARDWARE_ENCODER = "h264_nvenc"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HardwarePlan:
    """Which decoder and encoder a run uses.

    Attributes:
        hw_decode: decode with NVDEC (frames are downloaded to host memory).
        encoder: the FFmpeg encoder name for the video stream.
        decode_note / encode_note: why hardware was not used, when it was asked for.
    """

    hw_decode: bool
    encoder: str
    decode_note: str = ""
    encode_note: str = ""

    @property
    def decoder_label(self) -> str:
        return "NVDEC" if self.hw_decode else "software"


def decoder_accel(plan: HardwarePlan) -> HWAccel | None:
    """The PyAV ``hwaccel`` argument for opening the input (``None``: software)."""
    return HWAccel("cuda", allow_software_fallback=False) if plan.hw_decode else None


def nvdec_problem(path: Path, stream_index: int) -> str | None:
    """Why NVDEC cannot decode this video stream here (``None``: it can)."""
    try:
        with av.open(
            str(path), hwaccel=HWAccel("cuda", allow_software_fallback=False)
        ) as container:
            stream = container.streams[stream_index]
            for frame in container.decode(stream):
                del frame
                return None
    except (av.error.FFmpegError, OSError, StopIteration) as e:
        return str(e) or type(e).__name__
    return "no frame decoded"


def nvenc_problem(encoder: str, width: int, height: int) -> str | None:
    """Why ``encoder`` cannot be opened at ``width x height`` here (``None``: it can)."""
    try:
        context = av.CodecContext.create(encoder, "w")
        context.width, context.height = width, height
        context.pix_fmt = "yuv420p"
        context.time_base = fractions.Fraction(1, 25)
        context.open()
        context.close()
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return str(e) or type(e).__name__
    return None


def plan_hardware(
    mode: str, path: Path, stream_index: int, codec: str | None, out_width: int, out_height: int
) -> HardwarePlan:
    """Settle decoder and encoder for ``--hwaccel mode`` and ``--codec codec`` (``None``:
    not given).

    Raises:
        OptionError: unknown mode.
        DeviceError: ``cuda`` asked for and NVDEC cannot decode this input here.
    """
    if mode not in HWACCEL_MODES:
        raise OptionError(f"--hwaccel must be one of {', '.join(HWACCEL_MODES)}, got {mode!r}")
    if mode == "none":
        return HardwarePlan(False, codec or SOFTWARE_ENCODER)
    decode_note = nvdec_problem(path, stream_index) or ""
    if decode_note and mode == "cuda":
        raise DeviceError(
            f"--hwaccel cuda: hardware decoding is not available for {path.name}: {decode_note}"
        )
    if decode_note:
        log.info("hardware decoding not available (%s): decoding in software", decode_note)
    encoder, encode_note = codec or SOFTWARE_ENCODER, ""
    if codec is None:
        encode_note = nvenc_problem(HARDWARE_ENCODER, out_width, out_height) or ""
        if encode_note:
            log.info(
                "%s not available (%s): encoding with %s",
                HARDWARE_ENCODER,
                encode_note,
                SOFTWARE_ENCODER,
            )
        else:
            encoder = HARDWARE_ENCODER
    return HardwarePlan(not decode_note, encoder, decode_note, encode_note)
