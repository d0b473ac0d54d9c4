"""Live streaming: capture -> newest frame -> upscale (batch 1) -> window / recording / HTTP.

Latency comes first. The capture thread keeps only the newest frame (:class:`LatestSlot`;
stale frames are dropped and counted), the model sees one frame at a time on this thread,
and every output is handed the result without blocking on the network: HTTP clients
encode JPEGs in their own threads, the recording is encoded in a writer thread.

Colour matching defaults to ``shot`` as for files, made causal: the shot detector runs
with a look-ahead of one frame but nothing waits for it; a cut it finds at frame i resets
the matcher at frame i+1. Between cuts the matcher follows slow changes (exposure,
lighting) through its moving average. Latency added: none (a thumbnail per frame).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsr.media.capture import STREAM_WORK_FORMAT, STREAM_YUV, CaptureThread, LatestSlot, open_capture
from vidsr.colour.matching import ColourMatcher
from vidsr.config import EncodeConfig, check_colour, check_scale
from vidsr.device import resolve_device
from vidsr.errors import OptionError
from vidsr.engine.processor import FrameProcessor
from vidsr.colour.shots import ShotConfig, ShotDetector, make_thumbnail
from vidsr.media.sources import HostFrame
from vidsr.pipeline.live.outputs import Recorder, Window, renderer
from vidsr.pipeline.live.server import FrameHub, StreamServer
from vidsr.engine.upscaler import check_model_choice, default_model, load_model

log = logging.getLogger(__name__)
_LATENCY_WINDOW = 10_000  # frames kept for the latency percentiles


@dataclass(frozen=True)
class StreamConfig:
    """Everything one ``vidsr stream`` run needs.

    Attributes:
        source: camera index, ``/dev/videoN``, file, URL or ``lavfi:GRAPH`` (see
            :func:`vidsr.media.capture.open_capture`).
        model: model name; ``None`` for the default (the fast model where shipped).
        colour: ``shot`` (causal, see module doc), ``frame`` or ``off``.
        record: output video path, or ``None``.
        serve: ``(host, port)`` to serve MJPEG on, or ``None``.
        show: open an OpenCV window (``s`` toggles bicubic | vidsr, ``q``/Esc quits).
        frames / duration: stop after this many output frames / seconds.
        paced: release file/lavfi frames at their timestamps (``None``: auto).
    """

    source: str
    model: str | None = None
    scale: int = 2
    device: str = "auto"
    tile: int | None = None
    colour: str = "shot"
    record: Path | None = None
    overwrite: bool = False
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    serve: tuple[str, int] | None = None
    show: bool = False
    frames: int | None = None
    duration: float | None = None
    paced: bool | None = None

    def __post_init__(self) -> None:
        check_scale(self.scale)
        check_colour(self.colour)
        if self.frames is not None and self.frames < 1:
            raise OptionError(f"--frames must be >= 1, got {self.frames}")
        if self.duration is not None and not self.duration > 0:
            raise OptionError(f"--duration must be > 0, got {self.duration}")


@dataclass(frozen=True)
class StreamStats:
    """Figures so far: output ``frames``, ``dropped`` captures, output ``fps`` over the last
    second or so, capture-to-output latency percentiles in milliseconds."""

    frames: int
    dropped: int
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float

    def line(self) -> str:
        return (
            f"{self.fps:5.1f} fps  latency p50 {self.latency_p50_ms:4.0f} ms "
            f"p95 {self.latency_p95_ms:4.0f} ms  drops {self.dropped}"
        )


@dataclass(frozen=True)
class StreamSummary:
    """A finished stream: ``end_reason`` says why it stopped; ``stats`` cover the whole run."""

    source: str
    model: str
    width: int
    height: int
    out_width: int
    out_height: int
    captured: int
    seconds: float
    stats: StreamStats
    end_reason: str
    record: Path | None = None


class _Stats:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self.recent: deque[float] = deque(maxlen=120)  # output times, for the current fps
        self.frames = 0

    def add(self, captured_at: float) -> None:
        now = time.perf_counter()
        self.latencies.append((now - captured_at) * 1000.0)
        self.recent.append(now)
        self.frames += 1

    def snapshot(self, dropped: int, whole_run: bool = False) -> StreamStats:
        lat = list(self.latencies)
        p50, p95 = percentile(lat, 50), percentile(lat, 95)
        now = time.perf_counter()
        if whole_run:
            fps = self.frames / (now - self.started) if now > self.started else 0.0
        else:
            window = [t for t in self.recent if now - t <= 2.0]
            fps = (
                (len(window) - 1) / (window[-1] - window[0])
                if len(window) > 1 and window[-1] > window[0]
                else 0.0
            )
        return StreamStats(self.frames, dropped, fps, p50, p95)


def run_stream(
    config: StreamConfig,
    *,
    on_stats: Callable[[StreamStats], None] | None = None,
    on_ready: Callable[[str | None], None] | None = None,
    stop: threading.Event | None = None,
    stats_every: float = 1.0,
) -> StreamSummary:
    """Capture, upscale and output a live stream until it ends, a bound is reached, the
    user quits (``--show``: q), or ``stop`` is set.

    Args:
        on_stats: called about every ``stats_every`` seconds with the figures so far.
        on_ready: called once everything runs, with the server URL (or ``None``).
        stop: set it (from any thread) to end the stream cleanly.

    Returns:
        A :class:`StreamSummary`; the recording, if any, is complete and playable.

    Raises:
        InputError: the source cannot be opened (at once, naming it).
        OptionError, ModelError, EncodeError, DeviceError, OutputExistsError.
        ``KeyboardInterrupt`` passes through after a clean shutdown (recording kept).
    """
    stop = stop or threading.Event()
    model_name = config.model or default_model(config.scale)

    # 1. Checks that need nothing opened, then the source (fails at once, naming it).
    check_model_choice(model_name, config.scale)
    window = Window() if config.show else None
    capture = open_capture(config.source, paced=config.paced)
    slot = LatestSlot()
    grabber = CaptureThread(capture, slot, stop)
    recorder: Recorder | None = None
    server: StreamServer | None = None
    hub = FrameHub()
    try:
        # 2. Model and outputs.
        device = resolve_device(config.device)
        model = load_model(model_name, config.scale)
        colour = None if config.colour == "off" else ColourMatcher(config.colour, bins=256)  # type: ignore[arg-type]
        processor = FrameProcessor(
            model,
            device,
            STREAM_YUV,
            STREAM_YUV,
            STREAM_WORK_FORMAT,
            config.tile,
            colour_stage=colour,
        )
        out_w, out_h = capture.width * config.scale, capture.height * config.scale
        if config.record is not None:
            recorder = Recorder(
                config.record,
                capture.width,
                capture.height,
                capture.frame_rate,
                config.scale,
                config.encode,
                config.overwrite,
            )
            recorder.start()
        if config.serve is not None:
            server = StreamServer(config.serve, hub)
            server.start()
        if on_ready is not None:
            on_ready(server.url if server is not None else None)

        # 3. Warm the model up (first calls allocate and pick kernels), start capturing,
        #    then loop: newest frame -> model -> outputs.
        _warm_up(processor, capture.width, capture.height)
        grabber.start()
        end_reason, stats = _loop(
            config, processor, slot, grabber, recorder, hub, window, stop, on_stats, stats_every
        )
    finally:
        # 4. Shutdown: capture joined, streams ended, recording flushed and published.
        stop.set()
        if grabber.ident is not None:
            grabber.join()
        else:
            capture.close()
        if server is not None:
            server.stop()
        if window is not None:
            window.close()
        if recorder is not None:
            recorder.finish()
    if grabber.error is not None:
        raise grabber.error
    return StreamSummary(
        config.source,
        model_name,
        capture.width,
        capture.height,
        out_w,
        out_h,
        slot.captured,
        time.perf_counter() - stats.started,
        stats.snapshot(slot.dropped, whole_run=True),
        end_reason,
        config.record,
    )


def _warm_up(processor: FrameProcessor, width: int, height: int, calls: int = 2) -> None:
    """Run the model on grey frames so the first live frame is not the slow one."""
    grey = (
        np.full((height, width), 128, np.uint8),
        np.full((height // 2, width // 2), 128, np.uint8),
        np.full((height // 2, width // 2), 128, np.uint8),
    )
    for i in range(calls):
        processor.process([HostFrame(i, i, 0, grey, new_shot=True)])


def _loop(
    config: StreamConfig,
    processor: FrameProcessor,
    slot: LatestSlot,
    grabber: CaptureThread,
    recorder: Recorder | None,
    hub: FrameHub,
    window: Window | None,
    stop: threading.Event,
    on_stats: Callable[[StreamStats], None] | None,
    stats_every: float,
) -> tuple[str, _Stats]:
    """The processing loop (this thread does all device work). Returns why it ended."""
    stats = _Stats()
    detector = ShotDetector(ShotConfig(lookahead=1)) if config.colour == "shot" else None
    cut_pending = False
    next_report = stats.started + stats_every
    overlay, next_overlay = "", 0.0
    while True:
        if stop.is_set():
            return "stopped", stats
        if config.duration is not None and time.perf_counter() - stats.started >= config.duration:
            return f"--duration {config.duration:g} s reached", stats
        if recorder is not None and recorder.error is not None:
            raise recorder.error
        got = slot.take(timeout=0.1)
        if got is None:
            if slot.ended:
                return (
                    f"source ended ({slot.end_reason})"
                    if grabber.error is None
                    else slot.end_reason
                ), stats
            continue
        y, u, v = got.planes
        new_shot = stats.frames == 0 or cut_pending
        if detector is not None:  # decisions come one frame late; the reset follows the cut
            decided = detector.push(
                make_thumbnail(y, u, v, bits=8, thumb_size=detector.config.thumb_size)
            )
            cut_pending = any(cut for index, cut in decided if index > 0)
        frame = HostFrame(stats.frames, stats.frames, 0, got.planes, new_shot=new_shot)
        sr = processor.process([frame])[0]
        if time.perf_counter() >= next_overlay:  # percentiles sort: twice a second is enough
            overlay, next_overlay = stats.snapshot(slot.dropped).line(), time.perf_counter() + 0.5
        render = renderer(got.planes, sr, overlay)
        hub.publish(render)
        if recorder is not None:
            recorder.write(sr, got.captured_at, stats.frames)
        stats.add(got.captured_at)
        if window is not None and not window.show(render, overlay):
            return "quit", stats
        if on_stats is not None and time.perf_counter() >= next_report:
            on_stats(stats.snapshot(slot.dropped))
            next_report += stats_every
        if config.frames is not None and stats.frames >= config.frames:
            return f"--frames {config.frames} reached", stats


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in [0, 100] of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]
