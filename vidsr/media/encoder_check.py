"""Checks and advice about encoder choices, given before any work starts.

:func:`check_encoder_opens` tries the user's encoder options on a tiny frame size, so an
invalid ``--preset`` is one line up front instead of a failure after the run started;
:func:`stream_advice` says what to do about a track the output container cannot hold,
depending on what the user is already writing.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from vidsr.errors import OptionError
from vidsr.media.audio import AUDIO_CODEC_NAMES

# x264's and x265's preset names (x264_preset_names / x265_preset_names).
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# Hardware encoders are not opened up front: that would claim a device session.
_HARDWARE_SUFFIXES = ("_nvenc", "_qsv", "_vaapi", "_amf", "_videotoolbox", "_v4l2m2m")
# Where a track can go instead, in the order suggested.
_ALTERNATIVES = {".mkv": "matroska", ".mov": "mov"}


def check_encoder_opens(
    codec: str,
    pix_fmt: str,
    options: dict[str, str],
    time_base: Fraction | None,
    preset: str | None,
) -> None:
    """Raise :class:`OptionError` when ``preset`` is not one ``codec`` accepts.

    x264/x265 presets are checked by name; other software encoders are opened on a
    64x64 frame with ``options``. Nothing is checked without a preset (the other options
    are vidsr's own, validated when the config is built).
    """
    if preset is None or codec.endswith(_HARDWARE_SUFFIXES):
        return
    if codec in ("libx264", "libx265"):
        if preset not in X26X_PRESETS:
            raise OptionError(
                f"{codec} has no --preset {preset!r}; use one of {', '.join(X26X_PRESETS)}"
            )
        return
    cc = av.codec.CodecContext.create(codec, "w")
    cc.width, cc.height, cc.pix_fmt = 64, 64, pix_fmt
    cc.time_base = time_base or Fraction(1, 25)
    cc.options = dict(options)
    try:
        cc.open()
    except (av.error.FFmpegError, ValueError) as e:
        raise OptionError(f"{codec} does not accept --preset {preset!r}") from e


def stream_advice(
    kind: str, index: int, codec: str, ext: str, supported: set[str], audio: str | None = None
) -> str:
    """The one-line error for input stream ``index`` (``kind`` ``codec``) that a ``ext``
    output, holding the codecs ``supported``, cannot take; ``audio`` is the codec the
    stream was to be re-encoded to (``--audio aac|opus``), ``None`` when copied."""
    encoders = [m for m, name in AUDIO_CODEC_NAMES.items() if name in supported]
    if audio is not None:
        fix = f"use --audio {' or '.join(encoders)}" if encoders else "use another extension"
        return f"a {ext} file cannot hold {audio} audio (stream #{index}); {fix}"
    others = [e for e, fmt in _ALTERNATIVES.items() if e != ext and codec in _holds(fmt)]
    if kind == "audio":
        fixes = [f"--audio {m}" for m in encoders] + ["--audio none (drop it)"]
        where = f", or {' or '.join(others)} output" if others else ""
        return (
            f"audio stream #{index} ({codec}) cannot be copied into a {ext} file; "
            f"use {', '.join(fixes)}{where}"
        )
    if others:
        return (
            f"{kind} stream #{index} ({codec}) cannot be copied into a {ext} file; "
            f"use {' or '.join(others)} output"
        )
    return (
        f"{kind} stream #{index} ({codec}) cannot be copied into a {ext} file, nor "
        f"into the other containers vidsr writes; remove it from the input first"
    )


def _holds(container_format: str) -> set[str]:
    return set(av.open(io.BytesIO(), "w", format=container_format).supported_codecs)
