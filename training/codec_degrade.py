"""Codec-in-the-loop degradation of HR frame *sequences* into LR training input.

One sample is a short sequence of HR frames (8-16 by default: consecutive video frames, or a
still moved by :mod:`vidsr.training.motion`). Its LR version is made the way real video is:

1. optional Gaussian blur of the HR frames (sigma drawn in LR pixels, applied at HR scale),
2. an antialiased downscale by a kernel drawn from bicubic / area / bilinear / Lanczos (PIL),
3. optional mild Gaussian noise,
4. conversion to YUV 4:2:0 (libswscale, BT.601 limited range) and one encode of the whole
   sequence through PyAV, in memory (codec contexts, packets kept as a list): libx264 at a
   drawn CRF, preset, GOP length and B-frame count; or MPEG-2 / MPEG-4 part 2 at a drawn
   bit rate (bits per pixel per frame; DVD / DivX-like); or JPEG per frame,
5. a decode back to RGB, in display order; the picture type (I/P/B) of each frame is kept.

What a sample draws is a :class:`SampleParams`; the ranges it draws from are a
:class:`CodecSpec`, written as a ``--degrade`` spec string (``codec:x264:crf=18-38``) or a
preset name (:data:`PRESETS`). Frames are ``(N, H, W, 3)`` uint8 RGB throughout. Every
encoder and decoder runs on one thread, the frames carry their timestamps, their line
padding is zeroed (:func:`yuv420_frame`) and x264 keeps off its AVX-512 code (which reads
uninitialised memory), so a seed gives the same bytes on every run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.frame import PictureType
from PIL import Image

from vidsr.errors import OptionError

CODECS = ("x264", "mpeg2", "mpeg4", "jpeg")
# Antialiased PIL kernels, and "swscale": libswscale's bicubic (what ffmpeg's scale filter
# does by default, so how much web video was made smaller).
KERNELS = {
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "swscale": None,
}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_ENCODERS = {"x264": "libx264", "mpeg2": "mpeg2video", "mpeg4": "mpeg4"}
_DECODERS = {"x264": "h264", "mpeg2": "mpeg2video", "mpeg4": "mpeg4"}

Range = tuple[float, float]


@dataclass(frozen=True)
class CodecSpec:
    """The ranges a codec degradation draws each sample's settings from.

    Attributes:
        codecs: codec names from :data:`CODECS`; ``weights`` gives their odds.
        crf: x264 CRF range. ``presets``: x264 presets to pick from.
        gop: keyframe interval range in frames (x264, MPEG-2, MPEG-4).
        bframes: B-frame count range (0..3).
        bpp: MPEG-2 / MPEG-4 bit rate in bits per pixel per frame (DVD ~0.3-0.8).
        quality: JPEG quality range.
        frames: sequence length range.
        kernels: downscale kernels from :data:`KERNELS` to pick from.
        blur: Gaussian sigma range in LR pixels (applied before the downscale).
        noise: Gaussian noise std range in 8-bit codes (added before the encode).
        motion: stills only, largest pan speed in LR pixels per frame.
        zoom: stills only, largest zoom change over the sequence (0.03 = 3 %).
        rotate: stills only, largest rotation over the sequence in degrees.
        window: largest LR window side; bounds memory (frames * (window * scale)^2 * 3 B).
    """

    codecs: tuple[str, ...] = ("x264",)
    weights: tuple[float, ...] = (1.0,)
    crf: Range = (18.0, 38.0)
    presets: tuple[str, ...] = X264_PRESETS[:5]
    gop: Range = (4.0, 32.0)
    bframes: Range = (0.0, 3.0)
    bpp: Range = (0.2, 0.7)
    quality: Range = (30.0, 90.0)
    frames: Range = (8.0, 16.0)
    kernels: tuple[str, ...] = ("bicubic", "area", "bilinear", "lanczos")
    blur: Range = (0.0, 0.6)
    noise: Range = (0.0, 0.0)
    motion: float = 1.0
    zoom: float = 0.03
    rotate: float = 1.0
    window: int = 96

    def spec(self) -> str:
        """The canonical spec string (every field), parseable by :func:`parse_codec_spec`."""
        mix = ",".join(c if w == 1 else f"{c}*{w:g}" for c, w in zip(self.codecs, self.weights))
        rng = {
            k: f"{lo:g}-{hi:g}"
            for k, (lo, hi) in (
                ("crf", self.crf),
                ("gop", self.gop),
                ("bframes", self.bframes),
                ("bpp", self.bpp),
                ("quality", self.quality),
                ("frames", self.frames),
                ("blur", self.blur),
                ("noise", self.noise),
            )
        }
        parts = [
            f"codec:{mix}",
            f"crf={rng['crf']}",
            f"preset={','.join(self.presets)}",
            f"gop={rng['gop']}",
            f"bframes={rng['bframes']}",
            f"bpp={rng['bpp']}",
            f"quality={rng['quality']}",
            f"frames={rng['frames']}",
            f"kernels={','.join(self.kernels)}",
            f"blur={rng['blur']}",
            f"noise={rng['noise']}",
            f"motion={self.motion:g}",
            f"zoom={self.zoom:g}",
            f"rotate={self.rotate:g}",
            f"window={self.window}",
        ]
        return ":".join(parts)


PRESETS = {
    "web": "codec:x264:crf=18-38",
    "dvd": "codec:mpeg2:bpp=0.25-0.8:gop=12-15:bframes=2-2",
    "divx": "codec:mpeg4:bpp=0.1-0.4:gop=12-32",
    "real": "codec:x264*6,mpeg2*2,mpeg4,jpeg:crf=18-38:bpp=0.15-0.7:noise=0-2",
    # Web video as it is usually served: x264 at CRF 18-32 (presets up to medium) or DVD
    # MPEG-2, scaled by ffmpeg or a sharp kernel, little blur or noise.
    "streaming": (
        "codec:x264*5,mpeg2:crf=18-32:preset=veryfast,faster,fast,medium:bpp=0.3-0.8"
        ":kernels=swscale,bicubic,lanczos,area:blur=0-0.3:noise=0-1"
    ),
}


def is_codec_spec(spec: str) -> bool:
    """Whether ``spec`` names a codec degradation (``codec:...`` or a preset)."""
    head = spec.strip().lower()
    return head.split(":", 1)[0] in (*PRESETS, "codec")


def _range(key: str, raw: str, lo: float, hi: float) -> Range:
    try:
        a, sep, b = raw.partition("-")
        r = (float(a), float(b) if sep else float(a))
    except ValueError as e:
        raise OptionError(f"codec degradation: {key}={raw!r} is not a number or LO-HI") from e
    if not lo <= r[0] <= r[1] <= hi:
        raise OptionError(f"codec degradation: {key}={raw!r} must be LO-HI within [{lo}, {hi}]")
    return r


def _choices(key: str, raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise OptionError(f"codec degradation: {key}={raw!r}; use some of {', '.join(allowed)}")
    return names


def _mix(raw: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    codecs, weights = [], []
    for item in raw.split(","):
        name, _, w = item.strip().lower().partition("*")
        _choices("codec", name, CODECS)
        try:
            weight = float(w) if w else 1.0
        except ValueError as e:
            raise OptionError(f"codec degradation: weight {w!r} of {name} is not a number") from e
        if weight <= 0:
            raise OptionError(f"codec degradation: weight of {name} must be > 0")
        codecs.append(name)
        weights.append(weight)
    return tuple(codecs), tuple(weights)


_LIMITS = {
    "crf": (0, 51),
    "gop": (1, 1000),
    "bframes": (0, 3),
    "bpp": (0.01, 24),
    "quality": (1, 100),
    "frames": (1, 64),
    "blur": (0, 4),
    "noise": (0, 32),
}
_SCALARS = {"motion": (0, 16), "zoom": (0, 0.5), "rotate": (0, 30), "window": (8, 1024)}


def parse_codec_spec(spec: str) -> CodecSpec:
    """Parse ``codec:CODECS[:key=value]...`` or a preset name (``PRESET[:key=value]...``,
    later keys overriding the preset's) into a :class:`CodecSpec`.

    ``CODECS`` is a comma list of :data:`CODECS`, each optionally ``name*weight``. Keys:
    ``crf gop bframes bpp quality frames blur noise`` take ``LO-HI`` (or one value);
    ``preset`` and ``kernels`` take comma lists; ``motion zoom rotate window`` one number.
    Unnamed keys keep the :class:`CodecSpec` defaults. Raises :class:`OptionError`.
    """
    name, colon, extra = spec.strip().partition(":")
    text = PRESETS[name.lower()] + colon + extra if name.lower() in PRESETS else spec.strip()
    head, _, rest = text.partition(":")
    if head.lower() != "codec" or not rest:
        raise OptionError(
            f"not a codec degradation: {spec!r}; use codec:x264[:crf=18-38] "
            f"or one of {', '.join(PRESETS)}"
        )
    fields = rest.split(":")
    codecs, weights = _mix(fields[0])
    values: dict = {"codecs": codecs, "weights": weights}
    for item in fields[1:]:
        key, eq, raw = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise OptionError(f"codec degradation: {item!r} is not key=value")
        if key in _LIMITS:
            values[key] = _range(key, raw, *_LIMITS[key])
        elif key == "preset":
            values["presets"] = _choices(key, raw, X264_PRESETS)
        elif key == "kernels":
            values["kernels"] = _choices(key, raw, tuple(KERNELS))
        elif key in _SCALARS:
            value = _range(key, raw, *_SCALARS[key])[0]
            values[key] = int(value) if key == "window" else value
        else:
            raise OptionError(f"codec degradation: unknown key {key!r} in {spec!r}")
    return CodecSpec(**values)


@dataclass(frozen=True)
class SampleParams:
    """The settings one sequence was degraded with (recorded in the shard manifest)."""

    codec: str
    frames: int
    kernel: str
    blur: float
    noise: float
    crf: float = 0.0
    preset: str = ""
    gop: int = 0
    bframes: int = 0
    bpp: float = 0.0
    quality: int = 0

    def record(self) -> dict:
        """A compact dict: only the fields that apply to this codec."""
        keep = {
            "x264": ("crf", "preset", "gop", "bframes"),
            "mpeg2": ("bpp", "gop", "bframes"),
            "mpeg4": ("bpp", "gop", "bframes"),
            "jpeg": ("quality",),
        }[self.codec]
        d = asdict(self)
        return {
            k: v
            for k, v in d.items()
            if k in ("codec", "frames", "kernel", "blur", "noise") or k in keep
        }


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _integer(rng: np.random.Generator, r: Range) -> int:
    return int(rng.integers(round(r[0]), round(r[1]) + 1))


def draw_params(spec: CodecSpec, rng: np.random.Generator) -> SampleParams:
    """Draw one sequence's settings from ``spec`` (always the same number of draws)."""
    p = np.asarray(spec.weights, np.float64)
    codec = spec.codecs[int(rng.choice(len(spec.codecs), p=p / p.sum()))]
    frames = _integer(rng, spec.frames)
    kernel = spec.kernels[int(rng.integers(len(spec.kernels)))]
    blur = round(_uniform(rng, spec.blur), 3)
    noise = round(_uniform(rng, spec.noise), 3)
    crf = round(_uniform(rng, spec.crf), 1)
    preset = spec.presets[int(rng.integers(len(spec.presets)))]
    gop, bframes = _integer(rng, spec.gop), _integer(rng, spec.bframes)
    bpp = round(_uniform(rng, spec.bpp), 3)
    quality = _integer(rng, spec.quality)
    return SampleParams(codec, frames, kernel, blur, noise, crf, preset, gop, bframes, bpp, quality)


def downscale(frames: np.ndarray, scale: int, kernel: str, blur: float) -> np.ndarray:
    """Blur by ``blur`` LR pixels (sigma ``blur * scale`` at HR), then downscale each
    ``(N, H, W, 3)`` uint8 frame by ``scale`` with an antialiased PIL ``kernel``, or with
    libswscale's bicubic for ``"swscale"``.

    H and W must be multiples of ``scale``; returns ``(N, H/s, W/s, 3)`` uint8.
    """
    n, h, w, _ = frames.shape
    if h % scale or w % scale:
        raise ValueError(f"frame size {w}x{h} is not a multiple of scale {scale}")
    out = np.empty((n, h // scale, w // scale, 3), np.uint8)
    for i, frame in enumerate(frames):
        if blur > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=blur * scale, sigmaY=blur * scale)
        frame = np.ascontiguousarray(frame)
        if kernel == "swscale":
            small = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                width=w // scale, height=h // scale, interpolation="BICUBIC"
            )
            out[i] = small.to_ndarray(format="rgb24")
        else:
            out[i] = np.asarray(
                Image.fromarray(frame).resize((w // scale, h // scale), KERNELS[kernel])
            )
    return out


def add_noise(frames: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of ``std`` codes (no draw at all when ``std`` is 0)."""
    if std <= 0:
        return frames
    noisy = frames.astype(np.float32) + rng.normal(0.0, std, frames.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this (Linux) CPU has the AVX-512 subsets x264's AVX-512 code uses."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split() for line in text.splitlines() if line.startswith("flags")), [])
    return {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags)


def _codec_options(params: SampleParams, w: int, h: int) -> tuple[dict[str, str], dict]:
    """(AVOptions, codec-context attributes) for one encode.

    On a CPU with AVX-512, x264 is held to its AVX2 code: its AVX-512 functions read
    uninitialised memory that reaches the bitstream (measured: 2-18 different outputs in 60
    encodes of the same frames), so a seed would not give the same dataset twice.
    """
    if params.codec == "x264":
        x264 = f"keyint={params.gop}:min-keyint={params.gop}:bframes={params.bframes}:scenecut=0"
        if has_avx512():
            x264 += ":asm=AVX2"
        return {
            "crf": f"{params.crf:g}",
            "preset": params.preset,
            "threads": "1",
            "x264-params": x264,
        }, {}
    rate = int(params.bpp * w * h * 25)
    return {}, {"bit_rate": rate, "gop_size": params.gop, "max_b_frames": params.bframes}


def yuv420_frame(img: np.ndarray) -> av.VideoFrame:
    """Convert one ``(H, W, 3)`` uint8 RGB frame to a yuv420p :class:`av.VideoFrame` whose
    line padding is zeroed.

    libswscale leaves the bytes past each row's width uninitialised, and libx264 reads some
    of them (chroma rows narrower than its SIMD width): left as they are, the same frames
    encode to different bitstreams from one run to the next.
    """
    yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
    yuv = yuv.reformat(format="yuv420p")
    for plane in yuv.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows[:, plane.width :] = 0
    return yuv


def encode_decode(frames: np.ndarray, params: SampleParams) -> tuple[np.ndarray, list[str]]:
    """Encode ``(N, H, W, 3)`` uint8 RGB frames (H, W even) as one YUV 4:2:0 sequence with
    ``params.codec`` in memory, decode it, and return ``(decoded, picture_types)``: the
    decoded ``(N, H, W, 3)`` uint8 RGB frames in display order and ``"I"``/``"P"``/``"B"``
    per frame. JPEG compresses each frame alone (all ``"I"``).
    """
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even frame size, got {w}x{h}")
    if params.codec == "jpeg":
        flags = [int(cv2.IMWRITE_JPEG_QUALITY), params.quality]
        out = np.empty_like(frames)
        for i, img in enumerate(frames):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), flags)
            if not ok:
                raise RuntimeError("JPEG encode failed")
            out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        return out, ["I"] * n
    encoder = av.CodecContext.create(_ENCODERS[params.codec], "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 25), Fraction(25, 1)
    options, attrs = _codec_options(params, w, h)
    encoder.options = options
    encoder.thread_count = 1
    for key, value in attrs.items():
        setattr(encoder, key, value)
    packets = []  # the elementary stream, kept in memory
    for i, img in enumerate(frames):
        yuv = yuv420_frame(img)
        yuv.pts, yuv.time_base = i, encoder.time_base
        packets += encoder.encode(yuv)
    packets += encoder.encode(None)  # flush delayed (B-frame) output
    decoder = av.CodecContext.create(_DECODERS[params.codec], "r")
    decoder.thread_count = 1
    decoded, types = [], []
    for packet in [*packets, None]:
        for frame in decoder.decode(packet):
            decoded.append(frame.to_ndarray(format="rgb24"))
            types.append(PictureType(frame.pict_type).name)
    if len(decoded) != n:
        raise RuntimeError(f"{params.codec} round trip returned {len(decoded)} frames for {n}")
    return np.stack(decoded), types


def degrade_sequence(
    hr: np.ndarray, scale: int, params: SampleParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Make the LR sequence of ``(N, H, W, 3)`` uint8 RGB HR frames (H, W multiples of
    ``2 * scale``).

    Returns ``(lr, clean, picture_types)``: the decoded LR frames, the LR frames before
    noise and codec (both ``(N, H/s, W/s, 3)`` uint8), and each frame's picture type.
    """
    clean = downscale(hr, scale, params.kernel, params.blur)
    noisy = add_noise(clean, params.noise, rng)
    lr, types = encode_decode(noisy, params)
    return lr, clean, types
