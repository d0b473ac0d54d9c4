"""Render a short demo clip that needs no download: FFmpeg's ``testsrc2`` pattern with a
440 Hz tone, opened through PyAV's lavfi input, encoded to H.264 + AAC."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vidsr.errors import EncodeError


def render_demo_clip(
    path: Path, seconds: float = 4.0, size: tuple[int, int] = (320, 180), rate: int = 25
) -> Path:
    """Write ``path`` (.mp4): ``size`` = ``(width, height)`` test pattern plus a tone.

    Raises:
        EncodeError: the clip cannot be written.
    """
    width, height = size
    spec = f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}"
    tone = f"sine=frequency=440:sample_rate=48000:duration={seconds}"
    try:
        with (
            av.open(spec, format="lavfi") as video_in,
            av.open(tone, format="lavfi") as audio_in,
            av.open(str(path), "w") as out,
        ):
            out.metadata["title"] = "vidsr demo"
            video = out.add_stream(
                "libx264", rate=rate, options={"crf": "18", "preset": "veryfast"}
            )
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.time_base = video.codec_context.time_base = Fraction(1, rate)
            audio = out.add_stream("aac", rate=48000)
            for index, frame in enumerate(video_in.decode(video=0)):
                frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = index, Fraction(1, rate)
                out.mux(video.encode(frame))
            out.mux(video.encode())
            for frame in audio_in.decode(audio=0):
                frame.pts = None  # let the encoder count samples
                out.mux(audio.encode(frame))
            out.mux(audio.encode())
    except (av.error.FFmpegError, OSError) as e:
        raise EncodeError(f"cannot write the demo clip {path}: {e}") from e
    return path
