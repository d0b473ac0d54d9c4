"""Outputs of ``vidsr stream``: the recording (encoded in its own thread), the ``--show``
window, and the per-frame views (vidsr, bicubic | vidsr) shared by the window and HTTP.

All pictures handed to OpenCV are ``(H, W, 3)`` uint8 BGR; frames arrive as yuv420p
BT.601 studio-range planes (:data:`vidsr.media.capture.STREAM_YUV`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vidsr.config import EncodeConfig
from vidsr.errors import EncodeError, OptionError, OutputExistsError
from vidsr.media.capture import STREAM_WORK_FORMAT, STREAM_YUV, planes_to_bgr
from vidsr.media.planes import HostFrame, Planes
from vidsr.media.probe import synthetic_video_info
from vidsr.media.sinks import FileSink, container_default_codec, plan_output
from vidsr.pipeline.output import partial_path, publish
from vidsr.pipeline.runner import EncodeStage

_RECORD_TIME_BASE = Fraction(1, 1000)
_QUEUED_FRAMES = 8  # frames waiting for the recording's encoder before write() blocks


class Recorder:
    """Encodes the recording in its own thread (the runner's encode stage), under the
    ``.partial`` name until :meth:`finish` publishes it; ``write`` blocks only when
    8 frames wait."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        rate: Fraction,
        scale: int,
        encode: EncodeConfig,
        overwrite: bool = False,
    ) -> None:
        if path.exists() and not overwrite:
            raise OutputExistsError(f"output exists: {path} (use --overwrite to replace it)")
        if not path.parent.is_dir():
            raise EncodeError(f"output folder does not exist: {path.parent}")
        info = synthetic_video_info(
            path=path,
            container_format="live",
            width=width,
            height=height,
            source_format="yuv420p",
            work_format=STREAM_WORK_FORMAT,
            yuv=STREAM_YUV,
            frame_rate=rate,
            time_base=_RECORD_TIME_BASE,
        )
        # The container's own default where it has one (VP9 for .webm), as upscale does.
        codec = encode.codec or container_default_codec(path) or encode.codec_name
        # A live recording must keep up: x264/x265 default to "veryfast" here, not "medium".
        preset = encode.preset
        if preset is None and codec in ("libx264", "libx265"):
            preset = "veryfast"
        encode = EncodeConfig(
            codec=codec,
            crf=encode.crf,
            preset=preset,
            pix_fmt=STREAM_WORK_FORMAT,
            threads=encode.threads,
        )
        self.plan = plan_output(info, path, encode, scale)
        self.path = path
        self.write_path = partial_path(path)
        self.sink = FileSink(self.plan, info, self.write_path)
        self._stage = EncodeStage(self.sink, threading.Event(), _QUEUED_FRAMES, name="vidsr-record")
        self._last_pts = -1
        self._start: float | None = None

    @property
    def error(self) -> BaseException | None:
        """The encode thread's exception, once it has failed (raised again by finish())."""
        return self._stage.error

    def start(self) -> None:
        self._stage.start()

    def write(self, planes: Planes, captured_at: float, index: int) -> None:
        """Queue one upscaled frame, timed by its capture time (dropped once the encode
        thread has failed: :attr:`error` tells)."""
        if self._start is None:
            self._start = captured_at
        pts = max(self._last_pts + 1, round((captured_at - self._start) / _RECORD_TIME_BASE))
        self._last_pts = pts
        self._stage.put((planes, HostFrame(index, pts, 0, planes)))

    def finish(self) -> None:
        """Flush and close the recording, publish it under its name; join the thread."""
        started = self._stage.started
        self._stage.finish()
        if self.error is not None:
            raise self.error
        if started:
            publish(self.write_path, self.path)


class Window:
    """The ``--show`` window: ``s`` toggles bicubic | vidsr, ``q`` or Esc quits."""

    title = "vidsr"

    def __init__(self) -> None:
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise OptionError(
                "--show needs a display (no DISPLAY or WAYLAND_DISPLAY); use --serve instead"
            )
        self.split = False

    def show(self, render: Callable[[str], np.ndarray], overlay: str) -> bool:
        """Show a frame; returns False when the user asked to quit."""
        image = render("split" if self.split else "sr")
        cv2.putText(
            image, overlay, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA
        )
        try:
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as e:
            raise OptionError(
                f"--show: OpenCV cannot open a window ({e}); use --serve instead"
            ) from e
        if key == ord("s"):
            self.split = not self.split
        return key not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def renderer(lr: Planes, sr: Planes, overlay: str) -> Callable[[str], np.ndarray]:
    """Views of one frame as BGR pictures: ``sr`` (vidsr) and ``split`` (bicubic | vidsr)."""

    def render(view: str) -> np.ndarray:
        out = planes_to_bgr(sr)
        if view != "split":
            return out
        h, w = out.shape[:2]
        bicubic = cv2.resize(planes_to_bgr(lr), (w, h), interpolation=cv2.INTER_CUBIC)
        split = np.hstack([bicubic, out])
        for x, label in ((8, "bicubic"), (w + 8, "vidsr")):
            cv2.putText(
                split,
                label,
                (x, h - 10),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
        cv2.putText(
            split, overlay, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA
        )
        return split

    return render
