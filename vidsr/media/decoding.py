"""Open a video file's first video stream and decode it, with one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from vidsr.errors import InputError


def decode_first_video(path: Path) -> Iterator[tuple[av.VideoFrame, Fraction]]:
    """Yield ``(frame, rate)`` for every frame of ``path``'s first video stream; ``rate``
    is the stream's frame rate (25 when unknown), for frames without timestamps.

    Raises:
        InputError: the file cannot be opened or decoded, or has no video stream.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"cannot open video {path}: {e}") from e
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        try:
            for frame in container.decode(stream):
                yield frame, rate
        except av.error.FFmpegError as e:
            raise InputError(f"cannot decode video {path}: {e}") from e
