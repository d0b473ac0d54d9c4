"""Find the shots of a video file: decode it and run the (pure) cut detector over it.

Used by ``vidsr shots``, dataset building and the cut-detection benchmark; the upscaling
pipeline marks shots on its own frames as they flow (:mod:`vidsr.pipeline.shot_marks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from vidsr.colour.shots import Shot, ShotConfig, make_thumbnail, split_shots
from vidsr.errors import InputError
from vidsr.media.decoding import decode_first_video
from vidsr.media.planes import Planes, plane_to_array

# 8-bit planar YUV formats whose planes the detector reads as they are (others: swscale).
_PLANAR_YUV8 = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")


def frame_planes_8bit(frame: av.VideoFrame) -> Planes:
    """8-bit ``(Y, Cb, Cr)`` uint8 planes of a decoded frame, at the frame's own chroma
    subsampling (formats other than 8-bit planar YUV are converted to yuv420p)."""
    if frame.format.name not in _PLANAR_YUV8:
        frame = frame.reformat(format="yuv420p")
    y, u, v = (plane_to_array(p, np.uint8) for p in frame.planes[:3])
    return y, u, v


def _thumbnails(path: Path, thumb_size: int) -> Iterator[tuple[np.ndarray, int | None, float]]:
    """Yield ``(thumbnail, pts, seconds)`` for each frame of the first video stream."""
    for index, (frame, rate) in enumerate(decode_first_video(path)):
        y, u, v = frame_planes_8bit(frame)
        seconds = float(frame.time) if frame.time is not None else float(index / rate)
        yield make_thumbnail(y, u, v, thumb_size=thumb_size), frame.pts, seconds


def detect_shots(path: str | Path, config: ShotConfig | None = None) -> list[Shot]:
    """Decode a video file and return its shots in order.

    Raises:
        InputError: the file cannot be opened or decoded, or has no video stream.
    """
    config = config if config is not None else ShotConfig()
    shots = split_shots(_thumbnails(Path(path), config.thumb_size), config)
    if not shots:
        raise InputError(f"{path} has no decodable video frames")
    return shots
