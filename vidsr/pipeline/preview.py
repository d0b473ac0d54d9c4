"""Look before a long run: upscale a few short samples of a video with several models,
measure each model's speed here, and write a side-by-side comparison.

Each sample point is sought to (the nearest keyframe before it, then decoded up to it) and
``seconds`` of frames are decoded as host planes, as the pipeline decodes them (a point
less than ``seconds`` before the end starts that much earlier). Every
model runs through the pipeline's own compute stage
(:func:`vidsr.pipeline.planning.build_compute`: device, tiles, batches, colour matching),
one batch at a time, the models taking turns on each batch so that only one batch of
output per model is ever held. The time of each model's calls, after a warm-up call, gives
its frames per second (compute stage only: decoding and encoding add to a real run) and
the projected time for the whole video.

Outputs: a PNG grid (two rows per sample point: whole frames, then the centre enlarged
2x with nearest neighbour; columns: the input enlarged with nearest and bicubic, then each
model), and optionally a split-screen clip (left half the first model, right half the
second; with one model, bicubic | model).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidsr.config import RunConfig
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.upscaler import check_model_choice
from vidsr.errors import EncodeError, InputError, OptionError, OutputExistsError
from vidsr.media.images import planes_to_rgb
from vidsr.media.panels import Panel, render_grid
from vidsr.media.planes import HostFrame, Planes
from vidsr.media.probe import VideoInfo, probe
from vidsr.media.sources import frame_to_planes
from vidsr.pipeline.planning import Compute, build_compute

PANEL_MAX_WIDTH = 480  # whole-frame panels are shrunk to this width (crops show detail)
CROP_ZOOM = 2
DEFAULT_AT = ("10%", "50%", "90%")


@dataclass(frozen=True)
class PreviewConfig:
    """One ``vidsr preview`` run.

    Attributes:
        models: model names or weights files, one column (and one timing) each.
        at: sample points: ``"N%"`` of the duration, or seconds (``"12.5"``, ``"1:30"``).
        seconds: length of each sample (at least one frame).
        output: the PNG grid to write.
        clip: a split-screen video of the samples to write, or ``None``.
        run: scale, device, tile, colour and the rest as for files (``model`` is ignored);
            ``overwrite`` applies to ``output`` and ``clip``.
    """

    models: tuple[str, ...]
    output: Path
    at: tuple[str, ...] = DEFAULT_AT
    seconds: float = 2.0
    clip: Path | None = None
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not self.models:
            raise OptionError("--models needs at least one model")
        if not self.at:
            raise OptionError("--at needs at least one sample point")
        if not self.seconds > 0:
            raise OptionError(f"--seconds must be > 0, got {self.seconds}")


@dataclass(frozen=True)
class ModelTiming:
    """One model's speed on the samples: ``frames`` upscaled in ``seconds`` of compute
    (``fps``), and ``projected_seconds`` for the whole video (``None``: its frame count
    is unknown)."""

    name: str
    frames: int
    seconds: float
    fps: float
    projected_seconds: float | None


@dataclass(frozen=True)
class PreviewResult:
    """A finished preview: the sample start times (seconds from the video's start), the
    video's frame count used for the projections, the files written and each model's
    timing, in the order of ``PreviewConfig.models``."""

    input: Path
    points: tuple[float, ...]
    total_frames: int | None
    grid: Path
    grid_size: tuple[int, int]
    clip: Path | None
    device: str
    timings: tuple[ModelTiming, ...]


def preview(path: Path, config: PreviewConfig) -> PreviewResult:
    """Sample ``path``, upscale the samples with each model, write the grid (and clip).

    Raises:
        InputError: the video cannot be read, or a sample point yields no frame.
        OptionError: a bad sample point (outside the video, or a percentage of a video
            of unknown duration).
        ModelError, DeviceError: as for ``vidsr upscale``.
        OutputExistsError: ``output`` or ``clip`` exists and ``overwrite`` is off.
        EncodeError: the grid or the clip cannot be written.
    """
    for name in config.models:
        check_model_choice(name, config.run.scale)
    for out in (config.output, config.clip):
        if out is not None and out.exists() and not config.run.overwrite:
            raise OutputExistsError(f"output exists: {out} (use --overwrite to replace it)")
    info = probe(path)
    duration = _duration(info)
    points = tuple(sample_point(text, duration) for text in config.at)
    if duration is not None:  # a point near the end starts earlier, so its sample is whole
        points = tuple(min(p, max(0.0, duration - config.seconds)) for p in points)
    count = max(1, round(config.seconds * float(info.frame_rate or 25)))
    samples = [_decode_sample(info, start, count) for start in points]
    computes = _build(config, info)
    try:
        timings, shown, clip = _run_models(config, info, samples, computes)
    finally:
        for compute in computes:
            compute.processor.close()
    rows = grid_rows(info, points, samples, shown, config)
    grid = render_grid(rows)
    _save_png(grid, config.output)
    total = _total_frames(info, duration)
    return PreviewResult(
        path,
        points,
        total,
        config.output,
        (grid.shape[1], grid.shape[0]),
        clip,
        str(computes[0].device),
        tuple(
            ModelTiming(name, n, s, n / s if s > 0 else 0.0, total * s / n if total else None)
            for name, (n, s) in zip(config.models, timings, strict=True)
        ),
    )


def sample_point(text: str, duration: float | None) -> float:
    """A sample point in seconds from the video's start: ``"N%"`` of ``duration``, or
    seconds as ``"S"``, ``"M:SS"`` or ``"H:MM:SS"``.

    Raises:
        OptionError: not a point, or outside ``[0, duration)``.
    """
    text = text.strip()
    if text.endswith("%"):
        if duration is None:
            raise OptionError(f"--at {text}: the video's duration is unknown; give seconds")
        percent = _number(text[:-1], text)
        if not 0 <= percent <= 100:
            raise OptionError(f"--at {text}: a percentage must be in 0-100%")
        return min(percent / 100 * duration, max(0.0, duration - 1e-3))
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + _number(part, text)
    if seconds < 0 or (duration is not None and seconds >= duration):
        raise OptionError(f"--at {text}: outside the video (0 to {format_hms(duration or 0)})")
    return seconds


def _number(part: str, text: str) -> float:
    try:
        return float(part)
    except ValueError:
        raise OptionError(
            f"--at: not a time or percentage: {text!r} (e.g. 10%, 90, 1:30)"
        ) from None


def format_hms(seconds: float, decimals: int = 0) -> str:
    """``seconds`` as ``h:mm:ss``, rounded to the second (``decimals`` > 0: ``h:mm:ss.s``
    with that many decimals)."""
    if decimals <= 0:
        total = round(seconds)
        return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
    scaled = round(seconds * 10**decimals)
    whole, fraction = divmod(scaled, 10**decimals)
    return f"{format_hms(whole)}.{fraction:0{decimals}d}"


def _duration(info: VideoInfo) -> float | None:
    if info.duration_seconds:
        return info.duration_seconds
    if info.frame_count and info.frame_rate:
        return info.frame_count / float(info.frame_rate)
    return None


def _total_frames(info: VideoInfo, duration: float | None) -> int | None:
    if info.frame_count:
        return info.frame_count
    if duration is not None and info.frame_rate:
        return round(duration * float(info.frame_rate))
    return None


def _decode_sample(info: VideoInfo, start: float, count: int) -> list[Planes]:
    """``count`` frames (fewer at the end of the video) from ``start`` seconds, as planes
    of ``info.work_format``."""
    frames: list[Planes] = []
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams[info.stream_index]
            origin = stream.start_time or 0
            target = origin + int(Fraction(start) / stream.time_base)
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts < target:
                    continue  # decoded from the keyframe before the point
                frames.append(frame_to_planes(frame, info))
                if len(frames) == count:
                    break
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot read {info.path} at {format_hms(start)}: {e}") from e
    if not frames:
        raise InputError(f"{info.path}: no frame decoded at {format_hms(start)}")
    return frames


def _build(config: PreviewConfig, info: VideoInfo) -> list[Compute]:
    """One compute stage per model, as ``vidsr upscale`` would build it for this video."""
    formats = PlaneFormats(info.yuv, info.yuv, info.work_format)
    computes: list[Compute] = []
    try:
        for name in config.models:
            run = replace(config.run, model=name)
            computes.append(build_compute(run, info.width, info.height, formats))
    except BaseException:
        for compute in computes:
            compute.processor.close()
        raise
    return computes


def _run_models(
    config: PreviewConfig, info: VideoInfo, samples: list[list[Planes]], computes: list[Compute]
) -> tuple[list[tuple[int, float]], list[list[Planes]], Path | None]:
    """Upscale every sample with every model, batch by batch, the models taking turns.

    Returns each model's ``(frames, seconds)``, the middle frame of each sample per model
    (``shown[sample][model]``) and the clip written (or ``None``)."""
    first = HostFrame(0, 0, 0, samples[0][0], new_shot=True)
    for compute in computes:  # the first calls allocate and pick kernels: not timed
        compute.processor.process([first])
    timings = [(0, 0.0) for _ in computes]
    shown: list[list[Planes]] = []
    clip = _ClipWriter(config, info) if config.clip is not None else None
    step = min(compute.batch_size for compute in computes)  # one batch size for all
    try:
        for frames in samples:
            middle = len(frames) // 2
            picked: list[Planes] = []
            for begin in range(0, len(frames), step):
                batch = frames[begin : begin + step]
                hosts = [
                    HostFrame(begin + i, begin + i, 0, planes, new_shot=begin + i == 0)
                    for i, planes in enumerate(batch)
                ]
                outputs = []
                for m, compute in enumerate(computes):
                    started = time.perf_counter()
                    out = compute.processor.process(hosts)
                    n, s = timings[m]
                    timings[m] = (n + len(out), s + time.perf_counter() - started)
                    outputs.append(out)
                if begin <= middle < begin + len(batch):
                    picked = [out[middle - begin] for out in outputs]
                if clip is not None:
                    clip.write(batch, outputs)
            shown.append(picked)
    except BaseException:
        if clip is not None:
            clip.abort()
        raise
    if clip is not None:
        clip.close()
    return timings, shown, config.clip


def grid_rows(
    info: VideoInfo,
    points: tuple[float, ...],
    samples: list[list[Planes]],
    shown: list[list[Planes]],
    config: PreviewConfig,
) -> list[list[Panel]]:
    """Two rows of panels per sample point: whole frames (shrunk to at most
    ``PANEL_MAX_WIDTH``), then the centre of each at ``CROP_ZOOM`` x its output pixels.
    Columns: the input enlarged with nearest and bicubic, then each model."""
    scale = config.run.scale
    out_w, out_h = info.width * scale, info.height * scale
    if _quarter_turns(info.rotation) % 2:  # shown upright, as a player shows it
        out_w, out_h = out_h, out_w
    panel_w = max(2, min(out_w, PANEL_MAX_WIDTH) // 2 * 2)
    panel_h = max(2, round(panel_w * out_h / out_w) // 2 * 2)
    crop_w, crop_h = panel_w // CROP_ZOOM, panel_h // CROP_ZOOM
    x0, y0 = (out_w - crop_w) // 2, (out_h - crop_h) // 2
    rows: list[list[Panel]] = []
    for start, frames, outputs in zip(points, samples, shown, strict=True):
        lr = planes_to_rgb(frames[len(frames) // 2], info.yuv, 8)
        pictures = [
            (
                f"input nearest x{scale}",
                cv2.resize(lr, (out_w, out_h), interpolation=cv2.INTER_NEAREST),
            ),
            (
                f"input bicubic x{scale}",
                cv2.resize(lr, (out_w, out_h), interpolation=cv2.INTER_CUBIC),
            ),
        ]
        for name, planes in zip(config.models, outputs, strict=True):
            pictures.append((f"{_short(name)} x{scale}", planes_to_rgb(planes, info.yuv, 8)))
        whole, crops = [], []
        for label, coded in pictures:
            rgb = np.rot90(coded, _quarter_turns(info.rotation))
            small = cv2.resize(rgb, (panel_w, panel_h), interpolation=cv2.INTER_AREA)
            centre = rgb[y0 : y0 + crop_h, x0 : x0 + crop_w]
            zoomed = cv2.resize(centre, (panel_w, panel_h), interpolation=cv2.INTER_NEAREST)
            whole.append(Panel(label, small))
            crops.append(Panel(f"{label} centre {CROP_ZOOM}x", zoomed))
        whole[0] = Panel(f"{format_hms(start, 1)} {whole[0].label}", whole[0].image)
        rows += [whole, crops]
    return rows


def _quarter_turns(rotation: int) -> int:
    """Counter-clockwise quarter turns that show a frame of display ``rotation`` (degrees
    counter-clockwise, FFmpeg's display matrix) upright: ``np.rot90``'s ``k``."""
    return round(rotation / 90) % 4


def _short(name: str) -> str:
    """A model's label: a weights file by its stem."""
    return Path(name).stem if os.sep in name or "." in name else name


def _save_png(rgb: np.ndarray, path: Path) -> None:
    """Write ``rgb`` as a PNG under a temporary name, then rename it into place."""
    temp = path.with_name(f".{path.name}.partial")
    try:
        Image.fromarray(rgb).save(temp, format="PNG")
        os.replace(temp, path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise EncodeError(f"cannot write {path}: {e.strerror or e}") from e


class _ClipWriter:
    """The split-screen clip: left half the first model (bicubic with one model), right
    half the second (or the only one), labelled, H.264 at the video's frame rate."""

    def __init__(self, config: PreviewConfig, info: VideoInfo) -> None:
        assert config.clip is not None
        self.path = config.clip
        self.info = info
        self.scale = config.run.scale
        names = [_short(n) for n in config.models]
        self.labels = (names[0], names[1]) if len(names) > 1 else ("bicubic", names[0])
        self.width = info.width * self.scale // 2 * 2
        self.height = info.height * self.scale // 2 * 2
        self.temp = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        try:
            self.container = av.open(str(self.temp), "w")
            self.stream = self.container.add_stream("libx264", rate=info.frame_rate or 25)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot create {self.path}: {e}") from e
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        if info.rotation:  # the clip plays upright as the input does
            self.stream.set_display_rotation(info.rotation)
        self.stream.options = {"crf": "18", "preset": "veryfast"}
        self.font = ImageFont.load_default()

    def write(self, inputs: list[Planes], outputs: list[list[Planes]]) -> None:
        """One batch: the input frames and each model's outputs for them."""
        for i, planes in enumerate(inputs):
            right = planes_to_rgb(outputs[min(1, len(outputs) - 1)][i], self.info.yuv, 8)
            if len(outputs) > 1:
                left = planes_to_rgb(outputs[0][i], self.info.yuv, 8)
            else:
                lr = planes_to_rgb(planes, self.info.yuv, 8)
                left = cv2.resize(lr, right.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            self._encode(left[: self.height, : self.width], right[: self.height, : self.width])

    def _encode(self, left: np.ndarray, right: np.ndarray) -> None:
        half = self.width // 2
        split = np.concatenate([left[:, :half], right[:, half:]], axis=1)
        split[:, max(0, half - 1) : half + 1] = 255
        image = Image.fromarray(np.ascontiguousarray(split))
        draw = ImageDraw.Draw(image)
        for x, label in ((4, self.labels[0]), (half + 4, self.labels[1])):
            draw.text(
                (x, 4),
                label,
                fill=(255, 255, 255),
                font=self.font,
                stroke_width=1,
                stroke_fill=(0, 0, 0),
            )
        frame = av.VideoFrame.from_image(image)
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot write {self.path}: {e}") from e

    def close(self) -> None:
        """Flush the encoder and publish the clip under its name."""
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            os.replace(self.temp, self.path)
        except (av.error.FFmpegError, OSError) as e:
            self.abort()
            raise EncodeError(f"cannot write {self.path}: {e}") from e

    def abort(self) -> None:
        """Close and remove the unfinished clip."""
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError):
            pass
        self.temp.unlink(missing_ok=True)
