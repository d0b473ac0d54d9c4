"""Live frame capture for ``vidsr stream``: cameras (OpenCV) and streams/files/lavfi (PyAV).

Every capture delivers 8-bit planar YUV 4:2:0 in BT.601 studio range (:data:`STREAM_YUV`,
``yuv420p``): OpenCV's ``COLOR_BGR2YUV_I420`` and swscale's default both give exactly
that, and it is what the recording's encoder and the display conversion take as they are.

:class:`CaptureThread` reads in its own thread into a :class:`LatestSlot`, a one-frame
buffer that always holds the newest frame: a frame not taken before the next arrives is
dropped (and counted), so no queue ever grows and the consumer never works on stale frames.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from vidsr.colour.convert import YuvFormat
from vidsr.errors import InputError
from vidsr.media.planes import Planes, chroma_size, plane_to_array

log = logging.getLogger(__name__)
STREAM_YUV = YuvFormat(matrix=6, full_range=False, bits=8)
STREAM_WORK_FORMAT = "yuv420p"
_OPEN_TIMEOUT_S = 10.0


@dataclass
class CapturedFrame:
    """One captured frame: ``planes`` are ``(Y, U, V)`` uint8 yuv420p codes (:data:`STREAM_YUV`);
    ``captured_at`` is ``time.perf_counter()`` when the frame was read (or released, for paced
    sources); ``index`` counts every frame captured, dropped ones included."""

    index: int
    captured_at: float
    planes: Planes


class Capture(Protocol):
    """A live source. ``read`` blocks until the next frame and returns ``None`` at the end
    (or on disconnection, with the reason in ``end_reason``)."""

    name: str
    width: int
    height: int
    frame_rate: Fraction
    end_reason: str

    def read(self) -> Planes | None: ...
    def close(self) -> None: ...


def _split_i420(buf: np.ndarray, height: int, width: int) -> Planes:
    flat = buf.reshape(-1)
    chroma = chroma_size(STREAM_WORK_FORMAT, height, width)
    y_size, c_size = height * width, chroma[0] * chroma[1]
    y = flat[:y_size].reshape(height, width)
    u = flat[y_size : y_size + c_size].reshape(chroma)
    v = flat[y_size + c_size : y_size + 2 * c_size].reshape(chroma)
    return y, u, v


def planes_to_bgr(planes: Planes) -> np.ndarray:
    """yuv420p BT.601 studio-range planes -> ``(H, W, 3)`` uint8 BGR (OpenCV's layout)."""
    y, u, v = planes
    h, w = y.shape
    buf = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
    return cv2.cvtColor(buf, cv2.COLOR_YUV2BGR_I420)


def _check_even(name: str, width: int, height: int) -> None:
    if width % 2 or height % 2:
        raise InputError(
            f"{name}: frame size {width}x{height} is odd; streaming needs even sizes (4:2:0)"
        )


class OpenCVCapture:
    """A camera by index (``0``) or device path (``/dev/video0``) through OpenCV."""

    def __init__(self, device: int | str) -> None:
        self.name = f"camera {device}"
        self.end_reason = "camera stopped delivering frames (disconnected?)"
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # one clear error instead
        try:
            self._cap = cv2.VideoCapture(
                device, cv2.CAP_V4L2 if isinstance(device, str) else cv2.CAP_ANY
            )
            opened = self._cap.isOpened()
            ok, bgr = self._cap.read() if opened else (False, None)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not ok or bgr is None:
            self._cap.release()
            raise InputError(
                f"cannot open {self.name}" + ("" if opened else ": no such camera or it is busy")
            )
        self.height, self.width = bgr.shape[:2]
        _check_even(self.name, self.width, self.height)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.frame_rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self._first: np.ndarray | None = bgr

    def read(self) -> Planes | None:
        bgr, self._first = self._first, None
        if bgr is None:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
        if bgr.shape[:2] != (self.height, self.width):
            self.end_reason = f"camera changed its frame size to {bgr.shape[1]}x{bgr.shape[0]}"
            return None
        return _split_i420(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), self.height, self.width)

    def close(self) -> None:
        self._cap.release()


class PyAVCapture:
    """A video file, an FFmpeg lavfi graph (``lavfi:testsrc2=size=320x240:rate=30``) or a
    network stream (``rtsp://``, ``http://``...) through PyAV.

    Files and lavfi graphs are decoded as fast as the CPU allows, so with ``paced`` each
    frame is released at its own timestamp, as a camera would deliver it.
    """

    def __init__(self, spec: str, *, paced: bool) -> None:
        self.name = spec
        self.end_reason = "end of stream"
        self.paced = paced
        try:
            if spec.startswith("lavfi:"):
                self._container = av.open(spec[len("lavfi:") :], format="lavfi")
            else:
                self._container = av.open(spec, timeout=_OPEN_TIMEOUT_S, metadata_errors="replace")
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise InputError(
                f"cannot open stream source {spec}: {getattr(e, 'strerror', None) or e}"
            ) from e
        try:
            if not self._container.streams.video:
                raise InputError(f"stream source {spec} has no video")
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            self._frames = self._container.decode(stream)
            first = self._next()
            if first is None:
                raise InputError(f"stream source {spec} gave no frame ({self.end_reason})")
        except BaseException:
            self._container.close()
            raise
        self.width, self.height = first.width, first.height
        _check_even(spec, self.width, self.height)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.frame_rate = Fraction(rate) if rate else Fraction(30)
        self._first: av.VideoFrame | None = first
        self._clock: tuple[float, float] | None = None  # (perf_counter, stream seconds) of frame 0
        self._count = 0

    def _next(self) -> av.VideoFrame | None:
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except (av.error.FFmpegError, OSError) as e:
            self.end_reason = f"stream error: {getattr(e, 'strerror', None) or e}"
            return None

    def read(self) -> Planes | None:
        frame, self._first = self._first, None
        if frame is None:
            frame = self._next()
            if frame is None:
                return None
        if (frame.width, frame.height) != (self.width, self.height):
            self.end_reason = f"stream changed its frame size to {frame.width}x{frame.height}"
            return None
        if self.paced:
            self._wait_until_due(frame)
        if frame.format.name != STREAM_WORK_FORMAT:
            frame = frame.reformat(format=STREAM_WORK_FORMAT)
        self._count += 1
        y, u, v = (plane_to_array(p, np.uint8) for p in frame.planes[:3])
        return y, u, v

    def _wait_until_due(self, frame: av.VideoFrame) -> None:
        t = float(frame.time) if frame.time is not None else self._count / float(self.frame_rate)
        now = time.perf_counter()
        if self._clock is None:
            self._clock = (now, t)
            return
        delay = self._clock[0] + (t - self._clock[1]) - now
        if delay > 0:
            time.sleep(delay)

    def close(self) -> None:
        self._container.close()


def open_capture(source: str, *, paced: bool | None = None) -> Capture:
    """Open a live source and read its first frame, so a bad source fails here, at once.

    Args:
        source: a camera index (``0``), a V4L2 device (``/dev/video0``), ``lavfi:GRAPH``,
            a URL (``rtsp://...``) or a video file.
        paced: release frames at their timestamps; default: yes for files and lavfi
            graphs, no for cameras and network streams (they are live already).

    Raises:
        InputError: naming the source, when it cannot be opened or gives no frame.
    """
    if re.fullmatch(r"\d+", source):
        return OpenCVCapture(int(source))
    if source.startswith("/dev/video"):
        if not Path(source).exists():
            raise InputError(f"cannot open camera {source}: no such device")
        return OpenCVCapture(source)
    live = "://" in source
    if not live and not source.startswith("lavfi:") and not Path(source).exists():
        raise InputError(f"cannot open stream source {source}: no such file")
    return PyAVCapture(source, paced=not live if paced is None else paced)


class LatestSlot:
    """A one-frame buffer between the capture thread and the consumer: ``put`` replaces an
    untaken frame (counted in ``dropped``); ``take`` waits for a frame or the end."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: CapturedFrame | None = None
        self.ended = False
        self.end_reason = ""
        self.dropped = 0
        self.captured = 0

    def put(self, frame: CapturedFrame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.captured += 1
            self._cond.notify_all()

    def finish(self, reason: str) -> None:
        with self._cond:
            self.ended = True
            self.end_reason = reason
            self._cond.notify_all()

    def take(self, timeout: float) -> CapturedFrame | None:
        """The newest frame, or ``None`` after ``timeout`` seconds or once the source has
        ended and its last frame was taken (``ended`` tells which)."""
        with self._cond:
            if self._frame is None and not self.ended:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


class CaptureThread(threading.Thread):
    """Reads ``capture`` into ``slot`` until the source ends or ``stop`` is set, then
    closes the capture. An unexpected error ends the slot with that reason and is kept
    in ``error`` for the consumer to raise."""

    def __init__(self, capture: Capture, slot: LatestSlot, stop: threading.Event) -> None:
        super().__init__(name="vidsr-capture", daemon=True)
        self.capture, self.slot, self.stop_event = capture, slot, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        reason = "stopped"
        try:
            index = 0
            while not self.stop_event.is_set():
                planes = self.capture.read()
                if planes is None:
                    reason = self.capture.end_reason
                    break
                self.slot.put(CapturedFrame(index, time.perf_counter(), planes))
                index += 1
        except BaseException as e:  # re-raised by the consumer
            self.error = e
            reason = f"capture failed: {e}"
        finally:
            try:
                self.capture.close()
            finally:
                self.slot.finish(reason)
