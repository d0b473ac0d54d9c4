"""Is this input clean or compressed? The evidence ``--content auto`` decides from.

A model trained on clean bicubic downscales sharpens a codec's blocks and ringing along with
the picture; one trained on codec-degraded video removes them. Which to use follows from
how the input was stored:

* video: a lossless codec (FFV1, HuffYUV, Ut Video, raw, PNG, ...) is clean; any other
  codec is compressed unless its bit rate is near-lossless (at least
  :data:`NEAR_LOSSLESS_BPP` bits per pixel per frame, as intra mezzanine codecs such as
  ProRes HQ and DNxHR spend), or H.264 in x264's lossless profile. For scale: web H.264
  at CRF 23 spends 0.2-0.5 bits per pixel per frame, a DVD 0.5-0.8, ProRes 422 HQ about 3.5.
* images: PNG, TIFF, BMP and PPM/PGM are clean; JPEG is compressed below quality
  :data:`CLEAN_JPEG_QUALITY` (estimated from its luminance quantisation table); WebP is
  compressed unless it is lossless WebP (a ``VP8L`` bitstream).

The bit rate is measured from the packets themselves (the first :data:`SAMPLE_PACKETS` of the
video stream), not taken from the header, which is often missing or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from vidsr.config import WeightsKind
from vidsr.errors import InputError

LOSSLESS_CODECS = frozenset(
    {
        "ffv1",
        "huffyuv",
        "ffvhuff",
        "utvideo",
        "magicyuv",
        "rawvideo",
        "png",
        "apng",
        "qtrle",
        "r210",
        "v210",
        "v410",
        "zlib",
        "lagarith",
        "tiff",
        "bmp",
        "ppm",
        "pgm",
        "qoi",
        "ayuv",
        "y41p",
        "yuv4",
        "012v",
        "r10k",
        "v308",
        "v408",
    }
)
NEAR_LOSSLESS_BPP = 2.0
# x264's lossless mode (--qp 0) writes this profile; lossy 4:4:4 H.264 is rare and, at a
# bit rate of a bit per pixel or more, close to clean anyway.
LOSSLESS_H264_PROFILE = "High 4:4:4 Predictive"
CLEAN_JPEG_QUALITY = 90
SAMPLE_PACKETS = 120
CLEAN_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")

# The IJG (libjpeg) standard luminance quantisation table, natural order; a quality-q file
# scales it by 5000/q (q < 50) or 200 - 2q (q >= 50) percent.
_IJG_LUMA = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)


@dataclass(frozen=True)
class ContentVerdict:
    """What ``--content auto`` found: ``kind`` and, for the log and summary, ``reason``."""

    kind: WeightsKind
    reason: str


def assess_video(path: Path, stream_index: int | None = None) -> ContentVerdict:
    """Clean or compressed, from the video stream's codec and measured bit rate.

    Raises:
        InputError: the file cannot be opened or has no video stream.
    """
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            if not streams:
                raise InputError(f"{path}: no video stream")
            stream = streams[0] if stream_index is None else container.streams[stream_index]
            codec = stream.codec_context.name
            if codec in LOSSLESS_CODECS:
                return ContentVerdict("clean", f"lossless {codec}")
            profile = stream.codec_context.profile or ""
            bpp = _bits_per_pixel(container, stream)
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    if bpp is None:
        return ContentVerdict("compressed", f"lossy {codec}")
    if codec == "h264" and profile == LOSSLESS_H264_PROFILE and bpp >= 1.0:
        return ContentVerdict("clean", f"h264 {profile} at {bpp:.2f} bits/pixel (lossless mode)")
    if bpp >= NEAR_LOSSLESS_BPP:
        return ContentVerdict("clean", f"{codec} at {bpp:.2f} bits/pixel (near-lossless)")
    return ContentVerdict("compressed", f"{codec} at {bpp:.2f} bits/pixel")


def _bits_per_pixel(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    """Mean bits per pixel per frame over the first packets; ``None`` when none has data."""
    size = count = 0
    for packet in container.demux(stream):
        if packet.size:
            size, count = size + packet.size, count + 1
        if count >= SAMPLE_PACKETS:
            break
    pixels = stream.codec_context.width * stream.codec_context.height
    return size * 8 / (count * pixels) if count and pixels else None


def assess_images(paths: list[Path]) -> ContentVerdict:
    """Clean or compressed for a folder's images: compressed as soon as one of them is
    (a lossy WebP, or a JPEG below :data:`CLEAN_JPEG_QUALITY`); looks at every path given."""
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in (".jpg", ".jpeg"):
            quality = jpeg_quality(path)
            if quality is None or quality < CLEAN_JPEG_QUALITY:
                said = "unknown" if quality is None else f"about {quality}"
                return ContentVerdict("compressed", f"JPEG quality {said} ({path.name})")
        elif suffix == ".webp" and not _lossless_webp(path):
            return ContentVerdict("compressed", f"lossy WebP ({path.name})")
        elif suffix not in CLEAN_IMAGE_SUFFIXES + (".webp", ".jpg", ".jpeg"):
            return ContentVerdict("compressed", f"{suffix} images")
    return ContentVerdict("clean", "lossless image files")


def jpeg_quality(path: Path) -> int | None:
    """The IJG quality (1-100) a JPEG's luminance table matches best; ``None`` without one."""
    from PIL import Image

    with Image.open(path) as image:
        tables = getattr(image, "quantization", None) or {}
    table = tables.get(0)
    if table is None or len(table) != 64:
        return None
    best, best_err = None, float("inf")
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        ref = [min(255, max(1, int((v * scale + 50) // 100))) for v in _IJG_LUMA]
        # PIL lists the table in zigzag order; compare as sorted values (order-free).
        err = sum(abs(a - b) for a, b in zip(sorted(ref), sorted(table)))
        if err < best_err:
            best, best_err = q, err
    return best


def _lossless_webp(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(64)
    return b"VP8L" in head
