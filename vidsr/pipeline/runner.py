"""Run a frame source, a compute stage and a frame sink as three overlapping stages.

The source runs in a decode thread and the sink in an encode thread, each behind a
bounded queue (constant memory whatever the length); batching and all device work stay
on the calling thread. Any stage's exception stops the others promptly and is re-raised
here; every thread is joined before returning, whatever happened (PySceneDetect's pattern).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

import av

from vidsr.media.planes import HostFrame, Planes
from vidsr.media.sources import StreamPacket

_END = object()  # sentinel: the producing stage has finished
_POLL_SECONDS = 0.1


class FrameSink(Protocol):
    """Where upscaled frames go (a video file, a frame folder, a stream)."""

    def open(self) -> None: ...
    def write_frame(self, planes: Planes, frame: HostFrame) -> None: ...
    def mux_packet(self, stream_index: int, packet: av.Packet) -> None: ...
    def close(self) -> None: ...


class PendingResult(Protocol):
    @property
    def done(self) -> bool: ...
    def result(self) -> list[Planes]: ...


class BatchProcessor(Protocol):
    """Upscales batches; ``submit`` may return before the device has finished.
    ``max_in_flight`` (default 1) batches may be submitted before the oldest is
    collected; ``close()``, if present, stops the processor's own threads."""

    def submit(self, frames: list[HostFrame]) -> PendingResult: ...


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


def _queued(q: queue.Queue, stop: threading.Event, stages: tuple[_Stage, ...]) -> Iterator[object]:
    """The items of ``q`` up to the end marker (a failed stage's error is raised, see _get)."""
    while (item := _get(q, stop, stages)) is not _END:
        yield item


def _batches(
    items: Iterator[object], size: int, forward: Callable[[object], object]
) -> Iterator[list[HostFrame]]:
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


class EncodeStage:
    """The encode thread: writes what is queued to ``sink`` in order, then closes it.

    :meth:`start` opens the sink and starts the thread. :meth:`put` queues a
    ``(planes, frame)`` pair (:class:`HostFrame` and its upscaled planes) or a
    :class:`StreamPacket` to copy, blocking while ``queue_size`` items wait; it gives up
    once ``stop`` is set (the thread sets it when it fails). :meth:`finish` sends the end
    marker after the queued items and joins, so the sink is flushed and closed; a sink
    whose thread never started is closed quietly. The thread's exception is in ``error``.
    """

    def __init__(
        self,
        sink: FrameSink,
        stop: threading.Event,
        queue_size: int,
        *,
        name: str = "vidsr-encode",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.sink = sink
        self._stop_event = stop
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._progress = progress
        self.thread = _Stage(name, self._run, stop)

    @property
    def error(self) -> BaseException | None:
        return self.thread.error

    @property
    def started(self) -> bool:
        return self.thread.ident is not None

    def start(self) -> None:
        self.sink.open()
        self.thread.start()

    def put(self, item: object) -> bool:
        """Queue one item; returns whether it was queued (not when stopped)."""
        return _put(self._queue, item, self._stop_event)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, StreamPacket):
                    self.sink.mux_packet(item.stream_index, item.packet)
                else:
                    planes, frame = item
                    self.sink.write_frame(planes, frame)
                    if self._progress is not None:
                        self._progress(1)
        finally:
            self.sink.close()

    def finish(self) -> None:
        if self.started:
            _finish_encoder(self._queue, self.thread)
            return
        # The sink could not be opened: release whatever it holds. The error that
        # brought us here is the one to report, not this one.
        try:
            self.sink.close()
        except Exception:  # noqa: BLE001, S110
            pass


def run_stages(
    items: Callable[[threading.Event], Iterator[HostFrame | StreamPacket]],
    processor: BatchProcessor,
    sink: FrameSink,
    *,
    batch_size: int,
    queue_size: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Decode, process and write everything ``items(stop)`` yields, in order.

    ``sink.open()`` is called first and ``sink.close()`` always (it flushes the
    encoder), so an interrupted run leaves whatever was written readable.

    Raises:
        Whatever a stage raised; ``KeyboardInterrupt`` after the sink is closed.
    """
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)

    def decode() -> None:
        for item in items(stop):
            if not _put(decoded, item, stop):
                return
        _put(decoded, _END, stop)

    decoder = _Stage("vidsr-decode", decode, stop)
    encoder = EncodeStage(sink, stop, queue_size, progress=progress)
    try:
        encoder.start()
        decoder.start()
        _compute(_queued(decoded, stop, (decoder, encoder.thread)), processor, encoder, batch_size)
    finally:
        close = getattr(processor, "close", None)
        if close is not None:  # the processor's worker threads are joined too
            close()
        _stop_decoder(stop, decoded, decoder)
        encoder.finish()
    if encoder.error is not None:
        raise encoder.error
    if decoder.error is not None:
        raise decoder.error


def _compute(
    items: Iterator[object], processor: BatchProcessor, encoder: EncodeStage, batch_size: int
) -> None:
    """Batch the frames of ``items``, upscale them and queue the results for ``encoder``
    (other items go straight to it), all on the calling thread."""

    def hand_over(batch: list[HostFrame], pending: PendingResult) -> None:
        for frame, planes in zip(batch, pending.result(), strict=True):
            encoder.put((planes, frame))

    # Batches in flight: batch k+1 is submitted before batch k's frames are collected,
    # so on a GPU the host prepares k+1 while the device runs k, and CPU workers run
    # side by side. Frames are handed over strictly in submission order.
    limit = getattr(processor, "max_in_flight", 1)
    in_flight: deque[tuple[list[HostFrame], PendingResult]] = deque()
    for batch in _batches(items, batch_size, encoder.put):
        in_flight.append((batch, processor.submit(batch)))
        while in_flight and (len(in_flight) > limit or in_flight[0][1].done):
            hand_over(*in_flight.popleft())
    while in_flight:
        hand_over(*in_flight.popleft())


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
