"""Live streaming: capture -> newest frame -> upscale (batch 1) -> window / recording / HTTP.

Latency comes first. The capture thread keeps only the newest frame (:class:`LatestSlot`;
stale frames are dropped and counted), the model sees one frame at a time on this thread,
and every output is handed the result without blocking on the network: HTTP clients
encode JPEGs in their own threads, the recording is encoded in a writer thread.

Colour matching defaults to ``shot`` as for files, made causal: the shot detector runs
with a look-ahead of one frame but nothing waits for it; a cut it finds at frame i resets
the matcher at frame i+1. Between cuts the matcher follows slow changes (exposure,
lighting) through its moving average. Latency added: none (a thumbnail per frame).

A recurrent model's state is reset at the first frame, at the frame after each cut the
detector finds (so the first frame of a new shot still sees the old state: the cost of not
waiting), and at the first frame taken after captures were dropped (the state must not
carry over the gap). The detector runs for a recurrent model whatever ``--color`` says.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vidsr.colour.shots import ShotConfig, ShotDetector, make_thumbnail
from vidsr.config import RunConfig
from vidsr.engine.processor import FrameProcessor, PlaneFormats
from vidsr.engine.upscaler import check_model_choice, resolve_model
from vidsr.errors import OptionError
from vidsr.media.capture import (
    STREAM_WORK_FORMAT,
    STREAM_YUV,
    CapturedFrame,
    CaptureThread,
    LatestSlot,
    open_capture,
)
from vidsr.media.planes import HostFrame, chroma_size
from vidsr.pipeline.live.outputs import Recorder, Window, renderer
from vidsr.pipeline.live.server import FrameHub, StreamServer
from vidsr.pipeline.planning import build_compute

log = logging.getLogger(__name__)
_LATENCY_WINDOW = 10_000  # frames kept for the latency percentiles


@dataclass(frozen=True)
class StreamConfig:
    """Everything one ``vidsr stream`` run needs.

    Attributes:
        source: camera index, ``/dev/videoN``, file, URL or ``lavfi:GRAPH`` (see
            :func:`vidsr.media.capture.open_capture`).
        run: the model and its options as for files (``model=None``: the default model,
            as for files, :func:`~vidsr.engine.upscaler.resolve_model`): ``model``, ``scale``,
            ``device``,
            ``tile`` (used as given: the stream picks no tile size itself), ``colour``
            (``shot`` is causal here, see the module doc), ``self_ensemble``,
            ``compile``; ``overwrite`` and ``encode`` apply to the recording. Frames go
            through the model one at a time; ``resume``, ``hwaccel`` and batch sizes
            above 1 are for files only.
        record: output video path, or ``None``.
        serve: ``(host, port)`` to serve MJPEG on, or ``None``.
        show: open an OpenCV window (``s`` toggles bicubic | vidsr, ``q``/Esc quits).
        frames / duration: stop after this many output frames / seconds.
        paced: release file/lavfi frames at their timestamps (``None``: auto).
    """

    source: str
    run: RunConfig = field(default_factory=RunConfig)
    record: Path | None = None
    serve: tuple[str, int] | None = None
    show: bool = False
    frames: int | None = None
    duration: float | None = None
    paced: bool | None = None

    def __post_init__(self) -> None:
        if self.run.resume or self.run.hwaccel != "none":
            raise OptionError("--resume and --hwaccel apply to files, not to streams")
        if self.run.batch_size not in (None, 1):
            raise OptionError(f"a stream runs one frame at a time, not {self.run.batch_size}")
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
    # 1. Checks that need nothing opened, then the source (fails at once, naming it).
    check_model_choice(config.run.model, config.run.scale, self_ensemble=config.run.self_ensemble)
    session = _Session(config, stop or threading.Event())
    try:
        # 2. Model and outputs; 3. warm-up, capture and the loop.
        session.start(on_ready)
        end_reason = session.loop(on_stats, stats_every)
    finally:
        # 4. Shutdown: capture joined, streams ended, recording flushed and published.
        session.close()
    if session.grabber.error is not None:
        raise session.grabber.error
    return session.summary(end_reason)


class _Session:
    """One stream run: the source, the processor, the outputs and the loop's state.

    The capture thread fills ``slot``; everything else, device work included, runs on
    the thread that calls :meth:`start`, :meth:`loop` and :meth:`close`.
    """

    def __init__(self, config: StreamConfig, stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self.window = Window() if config.show else None
        self.capture = open_capture(config.source, paced=config.paced)
        self.slot = LatestSlot()
        self.grabber = CaptureThread(self.capture, self.slot, stop)
        self.hub = FrameHub()
        self.recorder: Recorder | None = None
        self.server: StreamServer | None = None
        self.processor: FrameProcessor | None = None
        self.stats = _Stats()
        self.detector: ShotDetector | None = None
        self.cut_pending = False
        self.last_index: int | None = None  # capture index of the frame upscaled last
        self.overlay, self.next_overlay = "", 0.0

    def start(self, on_ready: Callable[[str | None], None] | None) -> None:
        """Load the model, start the outputs, warm the model up (first calls allocate
        and pick kernels) and start capturing."""
        config, capture = self.config, self.capture
        if config.serve is not None:  # bound first: a port in use fails before the model loads
            self.server = StreamServer(config.serve, self.hub)
        formats = PlaneFormats(STREAM_YUV, STREAM_YUV, STREAM_WORK_FORMAT)
        run = replace(config.run, batch_size=1)
        compute = build_compute(run, capture.width, capture.height, formats, choose_tile=False)
        self.processor = compute.processor
        if config.record is not None:
            self.recorder = Recorder(
                config.record,
                capture.width,
                capture.height,
                capture.frame_rate,
                run.scale,
                run.encode,
                run.overwrite,
            )
            self.recorder.start()
        if self.server is not None:
            self.server.start()
        if on_ready is not None:
            on_ready(self.server.url if self.server is not None else None)
        _warm_up(self.processor, capture.width, capture.height)
        self.grabber.start()

    def loop(self, on_stats: Callable[[StreamStats], None] | None, stats_every: float) -> str:
        """Newest frame -> model -> outputs, until the stream ends; returns why it ended."""
        config, slot = self.config, self.slot
        self.stats = stats = _Stats()
        assert self.processor is not None
        if config.run.colour == "shot" or self.processor.model.stateful:
            self.detector = ShotDetector(ShotConfig(lookahead=1))
        next_report = stats.started + stats_every
        while True:
            if self.stop.is_set():
                return "stopped"
            elapsed = time.perf_counter() - stats.started
            if config.duration is not None and elapsed >= config.duration:
                return f"--duration {config.duration:g} s reached"
            if self.recorder is not None and self.recorder.error is not None:
                raise self.recorder.error
            got = slot.take(timeout=0.1)
            if got is None:
                if slot.ended:
                    ok = self.grabber.error is None
                    return f"source ended ({slot.end_reason})" if ok else slot.end_reason
                continue
            if not self._output(got):
                return "quit"
            if on_stats is not None and time.perf_counter() >= next_report:
                on_stats(stats.snapshot(slot.dropped))
                next_report += stats_every
            if config.frames is not None and stats.frames >= config.frames:
                return f"--frames {config.frames} reached"

    def _output(self, got: CapturedFrame) -> bool:
        """Upscale one captured frame and hand it to every output; ``False`` when the
        user closed the window."""
        assert self.processor is not None
        stats = self.stats
        new_shot = stats.frames == 0 or self.cut_pending or self._after_drop(got)
        if self.detector is not None:  # decisions come one frame late; the reset follows the cut
            thumb_size = self.detector.config.thumb_size
            decided = self.detector.push(make_thumbnail(*got.planes, bits=8, thumb_size=thumb_size))
            self.cut_pending = any(cut for index, cut in decided if index > 0)
        frame = HostFrame(stats.frames, stats.frames, 0, got.planes, new_shot=new_shot)
        sr = self.processor.process([frame])[0]
        if time.perf_counter() >= self.next_overlay:  # percentiles sort: twice a second will do
            self.overlay = stats.snapshot(self.slot.dropped).line()
            self.next_overlay = time.perf_counter() + 0.5
        render = renderer(got.planes, sr, self.overlay)
        self.hub.publish(render)
        if self.recorder is not None:
            self.recorder.write(sr, got.captured_at, stats.frames)
        stats.add(got.captured_at)
        return self.window is None or self.window.show(render, self.overlay)

    def _after_drop(self, got: CapturedFrame) -> bool:
        """Whether captures were dropped just before ``got`` and the model is recurrent
        (its state is then reset)."""
        assert self.processor is not None
        gap = self.last_index is not None and got.index != self.last_index + 1
        self.last_index = got.index
        return gap and self.processor.model.stateful

    def close(self) -> None:
        """Stop capturing and every output. The recording is flushed and published before
        the server stops, so nothing an HTTP client does can cost it; the server's stop
        is bounded (see :meth:`StreamServer.stop`)."""
        self.stop.set()
        if self.grabber.ident is not None:
            self.grabber.join()
        else:
            self.capture.close()
        self.hub.close()  # every MJPEG stream ends now
        try:
            if self.window is not None:
                self.window.close()
            if self.recorder is not None:
                self.recorder.finish()
        finally:
            if self.server is not None:
                self.server.stop()
            if self.processor is not None:
                self.processor.close()

    def summary(self, end_reason: str) -> StreamSummary:
        """The finished stream; its figures cover the whole run."""
        capture, scale = self.capture, self.config.run.scale
        return StreamSummary(
            self.config.source,
            resolve_model(self.config.run.model, scale),
            capture.width,
            capture.height,
            capture.width * scale,
            capture.height * scale,
            self.slot.captured,
            time.perf_counter() - self.stats.started,
            self.stats.snapshot(self.slot.dropped, whole_run=True),
            end_reason,
            self.config.record,
        )


def _warm_up(processor: FrameProcessor, width: int, height: int, calls: int = 2) -> None:
    """Run the model on grey frames so the first live frame is not the slow one."""
    chroma = chroma_size(STREAM_WORK_FORMAT, height, width)
    grey = (
        np.full((height, width), 128, np.uint8),
        np.full(chroma, 128, np.uint8),
        np.full(chroma, 128, np.uint8),
    )
    for i in range(calls):
        processor.process([HostFrame(i, i, 0, grey, new_shot=True)])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in [0, 100] of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]
