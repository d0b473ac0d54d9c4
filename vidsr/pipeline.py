"""The streaming video pipeline: decode -> queue -> batch -> model -> colour -> encode.

Three threads: the decode thread (PyAV demux + decode into a bounded queue), the main
thread (batching and all device work), and the encode thread (PyAV encode + mux). The
bounded queues keep memory constant whatever the video length. Any stage's exception
stops the others promptly and is re-raised on the main thread; threads are always joined.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vidsr.colour import YuvFormat
from vidsr.config import RunConfig
from vidsr.device import resolve_device
from vidsr.errors import EncodeError, InputError, OutputExistsError
from vidsr.probe import VideoInfo, probe
from vidsr.processor import FrameProcessor
from vidsr.sinks import FileSink, OutputPlan, plan_output
from vidsr.colour_match import ColourMatcher
from vidsr.shots import ShotConfig, ShotDetector
from vidsr.sources import FileSource, HostFrame, StreamPacket, with_shot_marks
from vidsr.upscaler import check_model_choice, load_model

log = logging.getLogger(__name__)

_END = object()  # sentinel: the producing stage has finished
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did."""

    output: Path
    frames: int
    seconds: float
    output_bytes: int
    corrupt_packets: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_output_path(src: Path, scale: int) -> Path:
    """``movie.mp4`` -> ``movie_x2.mp4`` next to the input."""
    return src.with_name(f"{src.stem}_x{scale}{src.suffix}")


def partial_path(dst: Path) -> Path:
    """The temporary name written to until the output is complete: ``out.partial.mp4``."""
    return dst.with_name(f"{dst.stem}.partial{dst.suffix}")


class _Stage(threading.Thread):
    """A worker thread that records its exception and signals ``stop`` when it fails."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self._stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as e:  # re-raised on the main thread
            self.error = e
            self._stop_event.set()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put without deadlocking: give up when ``stop`` is set. Returns whether it was put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event, stages: tuple[_Stage, ...]) -> object:
    """Get, raising the error of a failed stage instead of waiting forever."""
    while True:
        if stop.is_set():
            for stage in stages:
                if stage.error is not None:
                    raise stage.error
            return _END
        try:
            return q.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Fail early on output problems: exists, same as input, folder missing or read-only."""
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"output exists: {dst} (use --overwrite to replace it)")
    if dst.exists() and dst.is_dir():
        raise EncodeError(f"output is a directory: {dst}")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise EncodeError(f"output would overwrite the input: {dst}")
    folder = dst.parent
    if not folder.is_dir():
        raise EncodeError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise EncodeError(f"output folder is not writable: {folder}")


def _batches(items: Iterator[object], size: int, forward: Callable[[object], None]) -> Iterator[list[HostFrame]]:
    """Group frames into batches of ``size`` (the last may be shorter); other items are
    handed to ``forward`` as they come, so passthrough packets keep flowing."""
    batch: list[HostFrame] = []
    for item in items:
        if isinstance(item, HostFrame):
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
        else:
            forward(item)
    if batch:
        yield batch


def auto_batch_size(info: VideoInfo, on_cuda: bool) -> int:
    """Frames per model call: more for small frames, fewer for large ones."""
    pixels = info.width * info.height
    budget = 8_000_000 if on_cuda else 1_000_000
    return max(1, min(16 if on_cuda else 8, budget // max(1, pixels)))


def upscale_video(
    src: str | Path,
    dst: str | Path | None = None,
    config: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo, OutputPlan], None] | None = None,
) -> RunSummary:
    """Upscale a video file, copying its audio and subtitles, keeping timestamps and tags.

    Args:
        src: input video path.
        dst: output path; default ``<stem>_x<scale><ext>`` next to the input.
        config: model, scale, device, batching, tiling, colour and encoding options.
        progress: called with the number of frames just written (from the encode thread).
        on_start: called once the input is probed and the output planned.

    Returns:
        A :class:`RunSummary`.

    Raises:
        InputError, OptionError, ModelError, EncodeError, DeviceError, OutputExistsError.
        ``KeyboardInterrupt`` passes through after the partial output has been flushed
        and left under its ``.partial`` name.
    """
    config = config or RunConfig()
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output_path(src, config.scale)

    # 1. Check everything before any work: input, output, model, encoding plan.
    info = probe(src)
    check_paths(src, dst, config.overwrite)
    check_model_choice(config.model, config.scale)
    plan = plan_output(info, dst, config.encode, config.scale)
    if info.matrix_guessed:
        log.info("%s does not declare its colour matrix; using %s for %dx%d",
                 src, "BT.709" if info.yuv.matrix == 1 else "BT.601", info.width, info.height)
    if on_start is not None:
        on_start(info, plan)

    # 2. Model and device.
    device = resolve_device(config.device)
    model = load_model(config.model, config.scale)
    out_fmt = YuvFormat(info.yuv.matrix, info.yuv.full_range, plan.bits)
    processor = FrameProcessor(model, device, info.yuv, out_fmt, plan.work_format, config.tile,
                               colour_stage=make_colour_stage(config, info.yuv.bits))
    batch_size = config.batch_size or auto_batch_size(info, device.type == "cuda")

    # 3. Start the decode and encode threads around bounded queues.
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=config.queue_size)
    to_encode: queue.Queue = queue.Queue(maxsize=config.queue_size)
    source = FileSource(info, plan.passthrough)
    write_path = partial_path(dst)
    sink = FileSink(plan, info, write_path)

    def decode() -> None:
        items = source.items(stop)
        if config.colour == "shot":
            shots = ShotConfig()
            items = with_shot_marks(items, ShotDetector(shots), info.yuv.bits, shots.thumb_size)
        for item in items:
            if not _put(decoded, item, stop):
                return
        _put(decoded, _END, stop)

    def encode() -> None:
        try:
            while True:
                item = to_encode.get()
                if item is _END:
                    return
                if isinstance(item, StreamPacket):
                    sink.mux_packet(item.stream_index, item.packet)
                else:
                    planes, pts, duration = item
                    sink.write_frame(planes, pts, duration)
                    if progress is not None:
                        progress(1)
        finally:
            sink.close()

    started = time.perf_counter()
    decoder = _Stage("vidsr-decode", decode, stop)
    encoder = _Stage("vidsr-encode", encode, stop)
    stages = (decoder, encoder)
    outcome = "failed"
    try:
        sink.open()
        decoder.start()
        encoder.start()

        # 4. Batch, upscale and hand over, in order.
        def items() -> Iterator[object]:
            while (item := _get(decoded, stop, stages)) is not _END:
                yield item

        def forward(item: object) -> None:
            _put(to_encode, item, stop)

        for batch in _batches(items(), batch_size, forward):
            for frame, planes in zip(batch, processor.process(batch)):
                _put(to_encode, (planes, frame.pts, frame.duration), stop)
        outcome = "processed"
    except BaseException as e:
        if not isinstance(e, Exception):  # KeyboardInterrupt, SIGTERM: keep what was done
            outcome = "interrupted"
        raise
    finally:
        # 5. Shut down: stop decoding, let the encoder flush what it has, join everything.
        _stop_decoder(stop, decoded, decoder)
        if encoder.ident is not None:
            _finish_encoder(to_encode, encoder)
        else:  # the output could not be opened: release whatever was
            _close_quietly(sink)
        if outcome == "interrupted":
            log.warning("stopped: partial output left at %s", write_path)
        elif outcome == "failed" or encoder.error is not None:
            _remove(write_path)
    if encoder.error is not None:
        raise encoder.error
    if source.frames_decoded == 0:
        _remove(write_path)
        raise InputError(f"{src}: no frame could be decoded")
    os.replace(write_path, dst)
    seconds = time.perf_counter() - started
    return RunSummary(dst, sink.frames_written, seconds, dst.stat().st_size, source.corrupt_packets)


def make_colour_stage(config: RunConfig, bits: int) -> ColourMatcher | None:
    """Histogram matching for the run; ``None`` when ``--color off``."""
    if config.colour == "off":
        return None
    return ColourMatcher(config.colour, bins=256 if bits <= 8 else 1024)


def _stop_decoder(stop: threading.Event, decoded: queue.Queue, decoder: _Stage) -> None:
    """Stop the decode thread and empty its queue so a blocked ``put`` can return."""
    stop.set()
    while decoder.is_alive():
        try:
            while True:
                decoded.get_nowait()
        except queue.Empty:
            pass
        decoder.join(timeout=_POLL_SECONDS)


def _finish_encoder(to_encode: queue.Queue, encoder: _Stage) -> None:
    """Send the end marker after the queued frames and join; the encoder then flushes
    and closes the file. A failed encoder has stopped reading, so stop trying then."""
    while encoder.is_alive():
        try:
            to_encode.put(_END, timeout=_POLL_SECONDS)
            break
        except queue.Full:
            continue
    encoder.join()


def _close_quietly(sink: FileSink) -> None:
    try:
        sink.close()
    except EncodeError:
        pass  # the error that brought us here is the one to report


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
