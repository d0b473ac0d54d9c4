"""Frozen run configurations, validated when built (the CLI builds them once), and the
one vocabulary of option values (colour modes, scales, image extensions) that the library,
the CLI and training share.

Imports nothing heavy (no torch, PyAV or OpenCV): ``import vidsr.config`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from vidsr.errors import OptionError

DEFAULT_CODEC = "libx264"
# Where `vidsr train --export NAME` writes by default, relative to the working directory
# (never the installed package); an export is used as a file: --model
# vidsr-models/NAME_x2.safetensors.
EXPORT_DIR = "vidsr-models"
HWACCEL_MODES: tuple[str, ...] = ("none", "auto", "cuda")
# What happens to the input's audio tracks (``--audio``): copied, re-encoded, or dropped.
AudioMode = Literal["copy", "aac", "opus", "none"]
AUDIO_MODES: tuple[AudioMode, ...] = get_args(AudioMode)
ColourMode = Literal["shot", "frame", "off"]
COLOUR_MODES: tuple[ColourMode, ...] = get_args(ColourMode)
# Which weights of a model family a run uses: trained on clean bicubic downscales, or on
# codec-degraded video; ``auto`` decides from the input (vidsr.media.content).
Content = Literal["auto", "clean", "compressed"]
CONTENTS: tuple[Content, ...] = get_args(Content)
WeightsKind = Literal["clean", "compressed"]  # what ``auto`` resolves to
# Autocast precision of a model's forward pass (see vidsr.device.autocast_dtype).
Precision = Literal["auto", "fp32", "bf16"]
# --deinterlace: one progressive frame per interlaced frame, or one per field.
Deinterlace = Literal["frame", "field"]
DEINTERLACE_MODES: tuple[Deinterlace, ...] = get_args(Deinterlace)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
# --resampler: how an interpolation baseline scales 8-bit frames: the MATLAB-exact kernel,
# or FFmpeg's own scaler (libswscale, what `ffmpeg -vf scale` runs).
Resampler = Literal["exact", "swscale"]
RESAMPLERS: tuple[Resampler, ...] = get_args(Resampler)
# The models --resampler swscale applies to (the interpolation baselines).
SWSCALE_MODELS: tuple[str, ...] = ("bicubic", "lanczos")
# Upscaling factors a run accepts (each registry model lists those it supports).
SCALES: tuple[int, ...] = (2, 3, 4)
# Extensions read as still images (lower case), by folders, evaluation and training.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".ppm",
    ".pgm",
)
# Image formats written (``--format``), named without the dot, and their extension.
OUTPUT_FORMATS: dict[str, str] = {
    "png": ".png",
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "tif": ".tif",
    "tiff": ".tiff",
    "bmp": ".bmp",
    "webp": ".webp",
}


def check_scale(scale: int) -> None:
    """Raise :class:`OptionError` unless ``scale`` is one of :data:`SCALES`."""
    if scale not in SCALES:
        *head, last = (str(s) for s in SCALES)
        raise OptionError(f"--scale must be {', '.join(head)} or {last}, got {scale}")


def check_colour(colour: str) -> None:
    """Raise :class:`OptionError` unless ``colour`` is one of :data:`COLOUR_MODES`."""
    if colour not in COLOUR_MODES:
        raise OptionError(f"--color must be one of {', '.join(COLOUR_MODES)}, got {colour!r}")


@dataclass(frozen=True)
class EncodeConfig:
    """How the output video is encoded.

    Attributes:
        codec: FFmpeg encoder name (libx264, libx265, libsvtav1, ffv1, prores_ks, ...);
            ``None`` for the default: libx264, or NVENC when ``--hwaccel`` finds it.
        crf: constant rate factor / quality, ``None`` for the encoder's default.
        preset: encoder speed preset, ``None`` for the encoder's default.
        pix_fmt: output pixel format, ``None`` to keep the input's bit depth.
        threads: encoder threads (0: FFmpeg decides).
        gop: keyframe interval in frames; ``None`` for 2 seconds of video (seekable
            output, and ``--resume`` can continue from any finished 2-second group).
    """

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    threads: int = 0
    gop: int | None = None
    audio: AudioMode = "copy"

    @property
    def codec_name(self) -> str:
        """The encoder to use when no hardware choice is involved."""
        return self.codec or DEFAULT_CODEC

    def __post_init__(self) -> None:
        if self.gop is not None and self.gop < 1:
            raise OptionError(f"--gop must be >= 1, got {self.gop}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise OptionError(f"--crf must be between 0 and 63, got {self.crf}")
        if self.threads < 0:
            raise OptionError(f"encoder threads must be >= 0, got {self.threads}")
        if self.audio not in AUDIO_MODES:
            raise OptionError(
                f"--audio must be one of {', '.join(AUDIO_MODES)}, got {self.audio!r}"
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything one upscale run needs besides its input and output paths.

    Attributes:
        model: registry name or path to a weights file; ``None`` for the default model
            of the scale (:func:`vidsr.engine.upscaler.default_model`, what ``vidsr
            upscale`` uses when no ``--model`` is given).
        scale: upscaling factor.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: frames per model call; ``None`` chooses from the frame size.
        tile: tile size in input pixels, ``None`` for whole frames.
        colour: ``shot`` (per-shot histogram matching), ``frame`` or ``off``.
        overwrite: replace an existing output.
        queue_size: frames buffered between each pair of stages (bounds memory).
        resume: continue an interrupted run from its ``.partial`` output.
        hwaccel: ``none``, ``auto`` or ``cuda``: NVDEC decoding and NVENC encoding (see
            :mod:`vidsr.media.hwaccel`).
        compile: run the model through ``torch.compile`` (pays off on long videos; the
            first batches wait for the compilation).
        cpu_workers: model worker threads on the CPU; ``None`` decides from the model.
        self_ensemble: average the model over the eight flips and rotations of each frame
            (eight times the compute; see :mod:`vidsr.models.ensemble`).
        content: ``clean`` or ``compressed``: the family's weights trained on clean
            downscales or on codec-degraded video; ``auto`` decides from the input (its
            codec and bit rate, or the image files' format and JPEG quality).
        deinterlace: ``frame`` or ``field`` to deinterlace interlaced input before the
            model (see :mod:`vidsr.media.deinterlace`); ``None`` upscales frames as decoded.
        precision: ``auto`` (fp16 on CUDA, bf16 convolutions on CPUs with native bf16,
            where the model allows), ``fp32`` or ``bf16`` (see
            :func:`vidsr.engine.precision.resolve_precision`).
        resampler: ``exact`` (the MATLAB-exact kernel) or ``swscale`` (FFmpeg's scaler,
            see :mod:`vidsr.engine.swscale`): only for ``bicubic``/``lanczos`` on the CPU
            with ``--color off`` and whole 8-bit frames.
    """

    model: str | None = None
    scale: int = 2
    device: str = "auto"
    batch_size: int | None = None
    tile: int | None = None
    colour: ColourMode = "shot"
    overwrite: bool = False
    queue_size: int = 16
    resume: bool = False
    hwaccel: str = "none"
    compile: bool = False
    cpu_workers: int | None = None
    self_ensemble: bool = False
    content: Content = "auto"
    deinterlace: Deinterlace | None = None
    precision: Precision = "auto"
    resampler: Resampler = "exact"
    encode: EncodeConfig = field(default_factory=EncodeConfig)

    def __post_init__(self) -> None:
        check_scale(self.scale)
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.tile is not None and self.tile < 8:
            raise OptionError(f"--tile must be >= 8 pixels, got {self.tile}")
        check_colour(self.colour)
        if self.content not in CONTENTS:
            raise OptionError(
                f"--content must be one of {', '.join(CONTENTS)}, got {self.content!r}"
            )
        if self.cpu_workers is not None and self.cpu_workers < 1:
            raise OptionError(f"cpu workers must be >= 1, got {self.cpu_workers}")
        if self.hwaccel not in HWACCEL_MODES:
            raise OptionError(
                f"--hwaccel must be one of {', '.join(HWACCEL_MODES)}, got {self.hwaccel!r}"
            )
        if self.deinterlace is not None and self.deinterlace not in DEINTERLACE_MODES:
            raise OptionError(
                f"--deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, "
                f"got {self.deinterlace!r}"
            )
        if self.queue_size < 1:
            raise OptionError(f"queue size must be >= 1, got {self.queue_size}")
        if self.precision not in PRECISIONS:
            raise OptionError(
                f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        self._check_resampler()

    def _check_resampler(self) -> None:
        """Raise :class:`OptionError` (one line, saying why) for a ``--resampler`` this run
        cannot use: ``swscale`` is FFmpeg's scaler for the interpolation baselines' 8-bit
        CPU path (the bit depth is checked when the input is known)."""
        if self.resampler not in RESAMPLERS:
            raise OptionError(
                f"--resampler must be one of {', '.join(RESAMPLERS)}, got {self.resampler!r}"
            )
        if self.resampler == "exact":
            return
        why = None
        if self.model not in SWSCALE_MODELS:
            why = f"applies to --model bicubic or lanczos, not {self.model or 'the default model'}"
        elif self.device.startswith("cuda"):
            why = "runs on the CPU (use --device cpu or auto)"
        elif self.colour != "off":
            why = f"needs --color off (colour matching runs on the float path), got {self.colour}"
        elif self.tile is not None:
            why = "scales whole frames (drop --tile)"
        elif self.compile or self.self_ensemble:
            why = "has no model to compile or ensemble (drop --compile / --self-ensemble)"
        if why is not None:
            raise OptionError(f"--resampler swscale {why}")
