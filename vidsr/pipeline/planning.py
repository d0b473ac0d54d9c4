"""Plan the compute stage of a run: device, model, tile and batch sizes, queue bounds.

:func:`build_compute` is the one place a run's :class:`~vidsr.config.RunConfig` becomes
a ready :class:`~vidsr.engine.processor.FrameProcessor`; the video, frame-folder and
live-stream entry points all call it with the frame size and plane formats they need.
The sizing functions here are pure (frame size in, sizes out), apart from
:func:`free_device_memory`, which asks the CUDA driver.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vidsr.colour.shots import ShotConfig, ShotDetector
from vidsr.config import RunConfig, WeightsKind
from vidsr.device import resolve_device, runs_on_cpu
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.integer import IntegerProcessor, integer_formats
from vidsr.engine.swscale import SwscaleResampler
from vidsr.engine.upscaler import (
    has_compressed_weights,
    load_interpolator,
    load_model,
    resolve_model,
)
from vidsr.errors import OptionError
from vidsr.media.content import ContentVerdict
from vidsr.media.planes import HostFrame
from vidsr.media.sources import StreamPacket
from vidsr.models.interp import Interpolator
from vidsr.pipeline.runner import FrameSink, run_stages
from vidsr.pipeline.shot_marks import with_shot_marks

if TYPE_CHECKING:  # torch is imported when a run needs it (not by the 8-bit baselines)
    import torch

    from vidsr.colour.matching import ColourMatcher
    from vidsr.engine.processor import FrameProcessor
    from vidsr.models.contract import SRModel

log = logging.getLogger(__name__)

Items = Callable[[threading.Event], Iterator[HostFrame | StreamPacket]]

# Frames above this many input pixels are tiled even when --tile is not given, so 8K
# input does not need the whole frame's activations in memory at once.
AUTO_TILE_PIXELS = 3840 * 2160
AUTO_TILE_SIZE = 512
# On the CPU, learned models run fastest on tiles whose activations stay in cache (see
# the README's benchmarks). Output equals the untiled one.
CPU_CACHE_TILE = 192
# Nets that see far (a receptive radius of at least WIDE_RADIUS LR pixels: quality,
# temporal, community models) spend much of a 192 px tile on its overlap ((1 + 2r/192)**2
# of the pixels: 1.46x at r = 20); in 384 px tiles they ran 13-23% faster end to end on a
# 2-core CPU (quality x2 and x4, Real-ESRGAN animevideov3; the README's figures).
CPU_WIDE_TILE = 384
WIDE_RADIUS = 16
# Device memory a learned model needs per input pixel in a batch, for sizing batches from
# free memory: fp16 activations of a few 64-wide layers at input size, the upscaled output
# (x4, float32, 3 channels) and the colour stage's copies, rounded up generously.
CUDA_BYTES_PER_PIXEL = 4096
# Host memory the frames waiting in each queue may take (see the README's memory figures).
QUEUE_BYTES = 256 * 2**20


class ModelLoader(Protocol):
    """Loads a model as :func:`vidsr.engine.upscaler.load_model` does (the default); a
    worker that runs many jobs passes one that keeps its models loaded between them."""

    def __call__(
        self,
        name: str | None,
        scale: int,
        *,
        self_ensemble: bool = False,
        content: WeightsKind = "clean",
    ) -> SRModel: ...


@dataclass(frozen=True)
class Compute:
    """A run's compute stage, ready to use.

    Attributes:
        processor: upscales batches (close it when the run ends; the runner does); an
            :class:`~vidsr.engine.integer.IntegerProcessor` for an interpolation
            baseline's torch-free 8-bit stage (:func:`build_compute`).
        model: the loaded model (``model.name``, ``model.scale``, ``model.stateful``...):
            an :class:`~vidsr.models.interp.Interpolator` for that stage.
        device: where the model runs (``"cpu"`` for that stage).
        tile: the tile size the processor starts with (``None``: whole frames).
        batch_size: frames per model call.
    """

    processor: FrameProcessor | IntegerProcessor
    model: SRModel | Interpolator
    device: torch.device | str
    tile: int | None
    batch_size: int
    content: ContentVerdict = ContentVerdict("clean", "")

    def run(
        self,
        items: Items,
        sink: FrameSink,
        queue_size: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Decode ``items``, upscale them in batches of ``batch_size`` and write them to
        ``sink``, with at most ``queue_size`` frames between stages (see
        :func:`vidsr.pipeline.runner.run_stages`)."""
        run_stages(
            items,
            self.processor,
            sink,
            batch_size=self.batch_size,
            queue_size=queue_size,
            progress=progress,
        )


def build_compute(
    config: RunConfig,
    width: int,
    height: int,
    formats: PlaneFormats,
    *,
    choose_tile: bool = True,
    assess: Callable[[], ContentVerdict] | None = None,
    loader: ModelLoader | None = None,
) -> Compute:
    """Resolve the device, load the model and build the processor for ``width x height``
    input frames.

    Args:
        config: model, scale, device, tile, batch size, colour, compile and CPU workers.
        width / height: input frame size in pixels (sizes tiles and batches).
        formats: the processor's input and output planes.
        choose_tile: pick a tile size when ``config.tile`` is ``None`` (see
            :func:`auto_tile`); ``False`` keeps ``config.tile`` as given.
        assess: how to tell whether the input is clean or compressed, for
            ``--content auto`` (see :func:`choose_content`); ``None`` counts it as clean.
        loader: how to load the model (default :func:`~vidsr.engine.upscaler.load_model`;
            the processor moves it to ``device``, so a reused model stays there).

    An interpolation baseline on the CPU with nothing that needs float planes (8-bit in
    and out, no tiles, ``--color off``, no ``--compile`` or ``--self-ensemble``, the
    default loader) gets the torch-free 8-bit stage (:func:`integer_compute`).

    Raises:
        ModelError, DeviceError; OptionError for a ``--resampler swscale`` that cannot run.
    """
    content = choose_content(config, assess)
    tile = auto_tile(width, height, config.tile) if choose_tile else config.tile
    if loader is None and tile is None:
        integer = integer_compute(config, width, height, formats, content)
        if integer is not None:
            return integer
    if config.resampler == "swscale":
        raise OptionError(swscale_refusal(config, formats))
    from vidsr.engine.processor import FrameProcessor, ProcessorOptions

    device = resolve_device(config.device)
    model = (loader or load_model)(
        config.model, config.scale, self_ensemble=config.self_ensemble, content=content.kind
    )
    tile = auto_tile(width, height, config.tile, device, model) if choose_tile else config.tile
    options = ProcessorOptions(
        tile=tile,
        colour_stage=make_colour_stage(config, formats.in_fmt.bits),
        compile_model=config.compile,
        cpu_workers=config.cpu_workers or 1,
        precision=config.precision,
    )
    processor = FrameProcessor(model, device, formats, options)
    learned = model.family != "baseline"
    batch_size = config.batch_size or auto_batch_size(
        width, height, device.type == "cuda", learned, free_device_memory(device)
    )
    return Compute(processor, model, device, tile, batch_size, content)


def integer_compute(
    config: RunConfig, width: int, height: int, formats: PlaneFormats, content: ContentVerdict
) -> Compute | None:
    """The torch-free compute stage of an interpolation baseline on 8-bit planes (the
    same output as :class:`~vidsr.engine.processor.FrameProcessor`'s ``integer``
    kernel), or ``None`` when the run needs the torch one: another model, a device that
    is not the CPU, colour matching, ``--compile``, ``--self-ensemble``, tiles or planes
    of more than 8 bits. Whole frames only (the caller checks the tile size).

    Raises:
        ModelError, DeviceError.
    """
    if (
        config.colour != "off"
        or config.compile
        or config.self_ensemble
        or config.tile is not None
        or not integer_formats(formats)
    ):
        return None
    model = load_interpolator(config.model, config.scale)
    if model is None or not runs_on_cpu(config.device):
        return None
    batch_size = config.batch_size or auto_batch_size(width, height, False, False)
    resampler = None
    if config.resampler == "swscale":
        resampler = SwscaleResampler(model.kernel, model.scale, formats.out_format)
    processor = IntegerProcessor(model, formats, resampler)
    return Compute(processor, model, "cpu", None, batch_size, content)


def swscale_refusal(config: RunConfig, formats: PlaneFormats) -> str:
    """Why ``--resampler swscale`` cannot run here (what :class:`RunConfig` could not
    check before the input and the device were known)."""
    if not integer_formats(formats):
        bits = f"{formats.in_fmt.bits}-bit in, {formats.out_fmt.bits}-bit out"
        return f"--resampler swscale needs 8-bit input and output ({bits} here)"
    if not runs_on_cpu(config.device):
        return f"--resampler swscale runs on the CPU (--device {config.device} chose a GPU)"
    return "--resampler swscale applies to whole 8-bit frames of bicubic or lanczos runs"


def choose_content(
    config: RunConfig, assess: Callable[[], ContentVerdict] | None
) -> ContentVerdict:
    """Which weights of the model to load, and why (logged at the start of the run and
    shown in its summary): ``--content`` as given, else the input's own evidence where
    the model has compressed-input weights at this scale, else its clean weights."""
    if config.content != "auto":
        return ContentVerdict(config.content, f"--content {config.content}")
    name = resolve_model(config.model, config.scale)
    if not has_compressed_weights(name, config.scale):
        return ContentVerdict("clean", f"{name} x{config.scale} has one set of weights")
    verdict = assess() if assess is not None else ContentVerdict("clean", "no evidence")
    log.info("--content auto: %s input (%s)", verdict.kind, verdict.reason)
    return verdict


def make_colour_stage(config: RunConfig, bits: int) -> ColourMatcher | None:
    """Histogram matching for the run; ``None`` when ``--color off``."""
    if config.colour == "off":
        return None
    from vidsr.colour.matching import ColourMatcher

    return ColourMatcher(config.colour, bins=256 if bits <= 8 else 1024)


def with_shots(items: Items, config: RunConfig, bits: int, *, cuts: bool = False) -> Items:
    """``items`` with shot marks added to its frames for ``--color shot`` (the colour
    stage restarts its statistics at each cut) or when ``cuts`` is set (a recurrent model
    resets its state at each cut: pass ``model.stateful``); ``items`` itself otherwise."""
    if config.colour != "shot" and not cuts:
        return items

    def marked(stop: threading.Event) -> Iterator[HostFrame | StreamPacket]:
        shots = ShotConfig()
        return with_shot_marks(items(stop), ShotDetector(shots), bits, shots.thumb_size)

    return marked


def auto_tile(
    width: int,
    height: int,
    tile: int | None,
    device: torch.device | None = None,
    model: SRModel | Interpolator | None = None,
) -> int | None:
    """The tile size to use for ``width x height`` frames: the user's ``tile``;
    ``AUTO_TILE_SIZE`` for frames larger than 4K; for learned models on the CPU
    ``CPU_CACHE_TILE``, or ``CPU_WIDE_TILE`` for a receptive radius of ``WIDE_RADIUS`` or
    more; else ``None`` (whole frames, also when a frame is no larger than that tile)."""
    if tile is not None:
        return tile
    if width * height > AUTO_TILE_PIXELS:
        return AUTO_TILE_SIZE
    learned = model is not None and model.family != "baseline"
    on_cpu = device is not None and device.type == "cpu"
    if not (on_cpu and learned):
        return None
    wide = getattr(model, "receptive_radius", 0) >= WIDE_RADIUS  # (SRModel's; baselines: none)
    size = CPU_WIDE_TILE if wide else CPU_CACHE_TILE
    return size if max(width, height) > size else None


def auto_batch_size(
    width: int, height: int, on_cuda: bool, learned: bool = True, free_bytes: int | None = None
) -> int:
    """Frames per model call for ``width x height`` frames: enough pixels per call to
    amortise per-call costs, few enough that the batch stays cache- and memory-friendly
    (on the CPU learned models run best one frame at a time, interpolation baselines in
    small batches). On CUDA the batch also stays within half of ``free_bytes`` (the
    device's free memory) at ``CUDA_BYTES_PER_PIXEL``; an out-of-memory error still
    falls back to smaller tiles."""
    pixels = max(1, width * height)
    budget = 8_000_000 if on_cuda else (300_000 if learned else 1_000_000)
    if on_cuda and free_bytes is not None:
        budget = min(budget, free_bytes // 2 // CUDA_BYTES_PER_PIXEL)
    return max(1, min(16 if on_cuda else 8, budget // pixels))


def bounded_queue_size(requested: int, out_width: int, out_height: int, bits: int) -> int:
    """Frames per queue: ``requested``, fewer when that many output frames (4:2:0 sized)
    would pass ``QUEUE_BYTES``, but not below 2 for that reason (the stages must overlap)."""
    frame_bytes = out_width * out_height * 3 // 2 * (1 if bits <= 8 else 2)
    return min(requested, max(2, QUEUE_BYTES // max(1, frame_bytes)))


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (``None`` elsewhere)."""
    if device.type != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free)
