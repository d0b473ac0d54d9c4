"""Pure degradations applied to low-resolution patches, to mimic real video.

Every function takes a ``(N, H, W, 3)`` (or ``(H, W, 3)``) uint8 RGB array plus a seeded
``numpy.random.Generator`` where randomness is involved, and returns a new uint8 array of
the same shape. Nothing here touches files or global state, so a dataset built with the
same seed gets the same bytes.

A degradation is named by a short spec string, e.g. ``"jpeg:75"``, ``"h264:28"``,
``"blur:0.8"``, ``"noise:2"``; :func:`parse_spec` and :func:`apply` turn specs into calls.
:func:`parse_specs` also accepts one codec-in-the-loop sequence degradation
(``"codec:x264:crf=18-38"``, ``"web"``, ...; :mod:`vidsr.training.codec_degrade`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidsr.errors import OptionError
from vidsr.training import codec_degrade
from vidsr.training.codec_degrade import CodecSpec, is_codec_spec, parse_codec_spec

KINDS = ("jpeg", "h264", "blur", "noise")


@dataclass(frozen=True)
class Degradation:
    """One degradation step: ``kind`` in :data:`KINDS` and its strength ``value``.

    ``jpeg``: quality 1..100; ``h264``: x264 CRF 0..51; ``blur``: Gaussian sigma in
    pixels; ``noise``: Gaussian noise std in 8-bit code values.
    """

    kind: str
    value: float

    def spec(self) -> str:
        return f"{self.kind}:{self.value:g}"


def parse_spec(spec: str) -> Degradation:
    """Parse ``"kind:value"`` into a :class:`Degradation`; raises :class:`OptionError`."""
    kind, _, raw = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise OptionError(
            f"unknown degradation {kind!r} in {spec!r}; use one of {', '.join(KINDS)}"
        )
    defaults = {"jpeg": 75.0, "h264": 28.0, "blur": 0.8, "noise": 2.0}
    try:
        value = float(raw) if raw else defaults[kind]
    except ValueError as e:
        raise OptionError(f"degradation {spec!r}: {raw!r} is not a number") from e
    limits = {"jpeg": (1, 100), "h264": (0, 51), "blur": (0, 10), "noise": (0, 64)}
    lo, hi = limits[kind]
    if not lo <= value <= hi:
        raise OptionError(f"degradation {spec!r}: value must be in [{lo}, {hi}]")
    return Degradation(kind, value)


def parse_specs(
    specs: list[str] | tuple[str, ...],
) -> tuple[CodecSpec | None, tuple[Degradation, ...]]:
    """Split ``--degrade`` values into at most one codec spec and the point degradations
    (kept in order; they apply to the LR patches after the codec). Raises
    :class:`OptionError`."""
    codec: CodecSpec | None = None
    steps: list[Degradation] = []
    for spec in specs:
        if is_codec_spec(spec):
            if codec is not None:
                raise OptionError("only one codec degradation (codec:... or a preset) per build")
            codec = parse_codec_spec(spec)
        else:
            steps.append(parse_spec(spec))
    return codec, tuple(steps)


def _check(images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8:
        raise TypeError(f"degradations expect uint8 RGB, got {images.dtype}")
    if images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) or (H, W, 3), got {images.shape}")
    return images if images.ndim == 4 else images[None]


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress each image at ``quality`` (1..100, 4:2:0, OpenCV/libjpeg) and decode."""
    batch = _check(images)
    out = np.empty_like(batch)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
    for i, img in enumerate(batch):
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], params)  # OpenCV wants BGR
        if not ok:
            raise RuntimeError("JPEG encode failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out.reshape(images.shape)


def h264(images: np.ndarray, crf: float) -> np.ndarray:
    """Encode the images as one H.264 (x264, yuv420p) sequence in memory and decode it.

    The patches play as consecutive frames, so inter prediction and chroma subsampling
    leave the artefacts real video has. Odd sizes are edge-padded to even for 4:2:0 and
    cropped back. x264 veryfast, keyint 250, 3 B-frames, one thread, timestamped frames,
    through :func:`vidsr.training.codec_degrade.encode_decode` (bit-exact between runs; the
    Matroska-in-``io.BytesIO`` round trip used before was not).
    """
    batch = _check(images)
    n, h, w, _ = batch.shape
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        batch = np.pad(batch, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    params = codec_degrade.SampleParams(
        "x264", n, "bicubic", 0.0, 0.0, crf=crf, preset="veryfast", gop=250, bframes=3
    )
    decoded, _types = codec_degrade.encode_decode(batch, params)
    out = decoded[:, :h, :w]
    return out.reshape(images.shape)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each image with an isotropic Gaussian of ``sigma`` pixels (reflect borders)."""
    batch = _check(images)
    if sigma <= 0:
        return images.copy()
    out = np.stack([cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma) for img in batch])
    return out.reshape(images.shape)


def gaussian_noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``std`` code values, then round and clip to uint8."""
    batch = _check(images)
    noise = rng.normal(0.0, std, size=batch.shape).astype(np.float32)
    out = np.clip(np.rint(batch.astype(np.float32) + noise), 0, 255).astype(np.uint8)
    return out.reshape(images.shape)


def apply(
    images: np.ndarray, steps: tuple[Degradation, ...], rng: np.random.Generator
) -> np.ndarray:
    """Apply ``steps`` in order to ``(N, H, W, 3)`` uint8 RGB images; returns a new array."""
    out = _check(images).reshape(images.shape).copy()
    for step in steps:
        if step.kind == "jpeg":
            out = jpeg(out, int(round(step.value)))
        elif step.kind == "h264":
            out = h264(out, step.value)
        elif step.kind == "blur":
            out = gaussian_blur(out, step.value)
        elif step.kind == "noise":
            out = gaussian_noise(out, step.value, rng)
        else:  # pragma: no cover - parse_spec guards this
            raise OptionError(f"unknown degradation {step.kind!r}")
    return out
