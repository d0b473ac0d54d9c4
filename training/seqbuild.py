"""Sequence samples for recurrent models: runs of aligned LR/HR patch frames.

A sample is ``T`` consecutive HR frames of one ``P x P`` patch and their ``p x p`` LR
frames (``p = P / scale``):

* from a still image: a window moved by smooth random sub-pixel motion
  (:func:`vidsr.training.motion.still_trajectory`: pan, slight zoom and rotation), rendered
  with a margin of :data:`MARGIN` LR pixels on every side, downscaled as a whole with
  MATLAB-compatible bicubic (or degraded by the codec in the loop when one is set), and
  the margin cropped, so no frame suffers a border effect. With probability ``cut_rate`` the
  sequence cuts at a random frame to another image (the previous input, or a different
  window of the same image for the first), so the net learns to drop a stale state;
* from a video: ``T`` consecutive decoded frames, mod-cropped, each downscaled whole with
  MATLAB bicubic, and one patch window (the same for all frames) cut from the run.

Each still sample draws from ``numpy.random.default_rng([seed, input index, sample
index])``, so its bytes depend on nothing built before it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vidsr.eval.resize import bicubic_downscale, modcrop
from vidsr.training import codec_degrade, motion
from vidsr.training.codec_degrade import CodecSpec

MARGIN = 4
SPEED_LR = 1.5  # largest pan speed, LR pixels per frame
ZOOM = 0.03  # largest log-zoom change over a sequence
ROTATE = 1.0  # largest rotation over a sequence, degrees


@dataclass(frozen=True)
class SeqSample:
    """One sequence: ``hr`` ``(T, P, P, 3)`` and ``lr`` ``(T, p, p, 3)`` uint8 RGB;
    ``cut`` the index of the first frame after a cut (0: no cut)."""

    hr: np.ndarray
    lr: np.ndarray
    cut: int


def sample_rng(seed: int, input_index: int, sample_index: int) -> np.random.Generator:
    """The generator of one sample."""
    return np.random.default_rng([seed, input_index, sample_index])


def _render(
    image: np.ndarray, frames: int, side: int, scale: int, rng: np.random.Generator
) -> np.ndarray | None:
    """``frames`` HR frames ``(T, side, side, 3)`` of a moving window over ``image``, or
    None when the image is smaller than the window."""
    if min(image.shape[:2]) < side + 2:
        return None
    maps = motion.still_trajectory(
        image.shape[:2], (side, side), frames, rng, speed=SPEED_LR * scale, zoom=ZOOM, rotate=ROTATE
    )
    return motion.render(np.ascontiguousarray(image), maps, (side, side))


def _downscale(
    hr: np.ndarray, scale: int, codec: CodecSpec | None, rng: np.random.Generator
) -> np.ndarray:
    """LR frames of ``(T, H, W, 3)`` HR: MATLAB bicubic per frame, or the codec in the loop
    (one encode of the whole run, settings drawn from ``codec``)."""
    if codec is None:
        return np.stack([bicubic_downscale(np.ascontiguousarray(f), scale) for f in hr])
    params = replace(codec_degrade.draw_params(codec, rng), frames=len(hr))
    return codec_degrade.degrade_sequence(hr, scale, params, rng)[0]


def from_still(
    image: np.ndarray,
    other: np.ndarray,
    *,
    scale: int,
    lr_patch: int,
    frames: int,
    cut_rate: float,
    codec: CodecSpec | None,
    rng: np.random.Generator,
) -> SeqSample | None:
    """One sequence from an ``(H, W, 3)`` uint8 RGB still; ``other`` is the image a cut
    goes to. Returns None when ``image`` (or ``other``) is too small for the window."""
    side = (lr_patch + 2 * MARGIN) * scale
    cut = int(rng.integers(1, frames)) if rng.random() < cut_rate else 0
    hr = _render(image, frames, side, scale, rng)
    if hr is None:
        return None
    if cut:
        after = _render(other, frames - cut, side, scale, rng)
        if after is None:
            return None
        hr = np.concatenate([hr[:cut], after])
    lr = _downscale(hr, scale, codec, rng)
    m, P = MARGIN, lr_patch * scale
    hr_p = np.ascontiguousarray(hr[:, m * scale : m * scale + P, m * scale : m * scale + P])
    lr_p = np.ascontiguousarray(lr[:, m : m + lr_patch, m : m + lr_patch])
    return SeqSample(hr_p, lr_p, cut)


def from_run(
    run: np.ndarray, *, scale: int, lr_patch: int, count: int, rng: np.random.Generator
) -> list[SeqSample]:
    """``count`` sequences (random windows) from ``(T, H, W, 3)`` uint8 RGB consecutive
    video frames; each frame is mod-cropped and downscaled whole (the protocol's LR).
    Returns ``[]`` when a frame is smaller than a patch."""
    hr = np.stack([modcrop(f, scale) for f in run])
    h, w = hr.shape[1] // scale, hr.shape[2] // scale
    if h < lr_patch or w < lr_patch:
        return []
    lr = np.stack([bicubic_downscale(np.ascontiguousarray(f), scale) for f in hr])
    P = lr_patch * scale
    out = []
    for _ in range(count):
        y = int(rng.integers(0, h - lr_patch + 1))
        x = int(rng.integers(0, w - lr_patch + 1))
        out.append(
            SeqSample(
                np.ascontiguousarray(hr[:, y * scale : y * scale + P, x * scale : x * scale + P]),
                np.ascontiguousarray(lr[:, y : y + lr_patch, x : x + lr_patch]),
                0,
            )
        )
    return out
