"""Shot (cut) detection: streaming, causal with a small look-ahead.

In the spirit of PySceneDetect's ``AdaptiveDetector``: each frame gets a change score
against the previous frame, computed on a small downscaled YUV thumbnail, and a frame
starts a new shot when

1. its score is at least ``min_score`` (an absolute floor, in 8-bit code values),
2. its score is at least ``threshold`` times the mean score of its neighbours
   (``window`` frames before, up to ``window`` after), so steady motion does not cut,
3. it is not a flash: none of the next ``lookahead`` frames returns close to the frame
   before the candidate (the flash's start), and the candidate is not close to any of the
   ``lookahead`` frames before that one (the flash's end),
4. at least ``min_shot_len`` frames have passed since the last cut.

The score is a *motion-compensated* mean absolute difference: the thumbnail is compared
with the previous one at the global shift (up to ``max_shift`` thumbnail pixels) that
aligns them best. A camera pan then scores near zero, while two unrelated
pictures differ at every shift.

Pure: the detector works on numpy planes and thumbnails, and decodes nothing. The
decode stage calls :func:`make_thumbnail` on host planes and feeds
:meth:`ShotDetector.push` (:mod:`vidsr.pipeline.shot_marks`); :func:`split_shots` runs it
over a whole sequence (:func:`vidsr.media.shot_scan.detect_shots` does so for a file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from vidsr.errors import OptionError

# Luma carries most of the structure; chroma catches cuts between pictures of equal
# brightness. Weights for (Y, Cb, Cr) in the score.
_CHANNEL_WEIGHTS = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class ShotConfig:
    """Shot detector settings.

    Attributes:
        threshold: a cut's score must be at least this multiple of its neighbours' mean.
        min_score: absolute floor on a cut's score: mean absolute difference between
            thumbnails in 8-bit code values (0..255), luma weighted 1/2, chroma 1/4 each.
        min_shot_len: minimum number of frames in a shot; a cut closer than this to the
            previous one is ignored.
        window: number of past (and, within the look-ahead, future) scores averaged for
            the neighbours' level.
        lookahead: number of future frames the detector waits for before deciding a
            frame; also how far it looks for a flash ending.
        flash_ratio: a candidate is a flash's start (end) when a frame of the look-ahead
            (look-back) differs from the frame before the candidate (from the candidate) by
            less than ``flash_ratio`` times the candidate's score.
        max_shift: largest global shift, in thumbnail pixels, tried to compensate pans.
        thumb_size: long side of the thumbnail in pixels.
    """

    threshold: float = 2.5
    min_score: float = 8.0
    min_shot_len: int = 10
    window: int = 2
    lookahead: int = 3
    flash_ratio: float = 0.5
    max_shift: int = 4
    thumb_size: int = 64

    def __post_init__(self) -> None:
        if not self.threshold > 1.0:
            raise OptionError(f"threshold must be > 1, got {self.threshold}")
        if not self.min_score >= 0.0:
            raise OptionError(f"min_score must be >= 0, got {self.min_score}")
        if self.min_shot_len < 1:
            raise OptionError(f"min_shot_len must be >= 1, got {self.min_shot_len}")
        if self.window < 1:
            raise OptionError(f"window must be >= 1, got {self.window}")
        if self.lookahead < 1:
            raise OptionError(f"lookahead must be >= 1, got {self.lookahead}")
        if not 0.0 <= self.flash_ratio < 1.0:
            raise OptionError(f"flash_ratio must be in [0, 1), got {self.flash_ratio}")
        if self.max_shift < 0:
            raise OptionError(f"max_shift must be >= 0, got {self.max_shift}")
        if self.thumb_size < 4 * self.max_shift + 8:
            raise OptionError(
                f"thumb_size {self.thumb_size} too small for max_shift {self.max_shift}; "
                f"use at least {4 * self.max_shift + 8}"
            )


@dataclass(frozen=True)
class Shot:
    """One detected shot.

    Attributes:
        index: index of the shot's first frame in decode order (0-based).
        frames: number of frames in the shot.
        pts: the first frame's presentation timestamp in ``time_base`` units, or None
            when the stream has none.
        time: the first frame's time in seconds (from pts, else from the frame rate).
    """

    index: int
    frames: int
    pts: int | None
    time: float


def thumbnail_shape(height: int, width: int, thumb_size: int) -> tuple[int, int]:
    """``(h, w)`` of the thumbnail of an ``height x width`` picture, long side ``thumb_size``."""
    if height < 1 or width < 1:
        raise ValueError(f"picture size must be positive, got {width}x{height}")
    scale = thumb_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _plane_to_float(plane: np.ndarray, bits: int | None) -> np.ndarray:
    if plane.ndim != 2:
        raise ValueError(f"expected a 2-D plane (H, W), got shape {plane.shape}")
    if plane.dtype == np.uint8:
        return plane.astype(np.float32) * np.float32(1.0 / 255.0)
    if plane.dtype == np.uint16:
        depth = 16 if bits is None else bits
        return plane.astype(np.float32) * np.float32(1.0 / (255 * 2 ** (depth - 8)))
    if plane.dtype in (np.float32, np.float64):
        return plane.astype(np.float32, copy=False)
    raise TypeError(f"plane dtype must be uint8, uint16 or float, got {plane.dtype}")


def make_thumbnail(
    y: np.ndarray,
    u: np.ndarray | None = None,
    v: np.ndarray | None = None,
    *,
    bits: int | None = None,
    thumb_size: int = 64,
) -> np.ndarray:
    """Downscale a frame's planes to a small thumbnail for :class:`ShotDetector`.

    Args:
        y: luma plane ``(H, W)``: uint8 codes, uint16 codes (``bits`` significant bits,
            e.g. 10 for yuv420p10le; 16 if not given) or float32 already code-normalised
            (``code / (255 * 2**(bits - 8))``, so 8-bit video is in [0, 1]).
        u, v: optional chroma planes, same dtype, any subsampling (4:2:0, 4:2:2, 4:4:4).
            Give both or neither.
        bits: significant bits of uint16 planes.
        thumb_size: long side of the thumbnail (use ``ShotConfig.thumb_size``).

    Returns:
        ``(C, h, w)`` float32, code-normalised YCbCr (C = 3) or luma only (C = 1).
    """
    if (u is None) != (v is None):
        raise ValueError("give both chroma planes u and v, or neither")
    h, w = thumbnail_shape(y.shape[0], y.shape[1], thumb_size)
    planes = [y] if u is None or v is None else [y, u, v]
    # INTER_AREA averages the pixels under each thumbnail pixel: noise and grain cancel.
    out = [
        cv2.resize(_plane_to_float(p, bits), (w, h), interpolation=cv2.INTER_AREA) for p in planes
    ]
    return np.stack(out)


def _shifted_distance(a: np.ndarray, b: np.ndarray, max_shift: int) -> float:
    """Weighted mean |a - shift(b)| at the global shift that best aligns b with a.

    The shift (up to ``max_shift`` pixels each way) is the one with the smallest weighted
    squared difference, found by OpenCV's template matching in one call per channel;
    the score is then the weighted mean absolute difference there, in 8-bit code values.
    """
    _, h, w = a.shape
    m = min(max_shift, (min(h, w) - 1) // 4)  # keep most of a very flat thumbnail compared
    weights = _CHANNEL_WEIGHTS if a.shape[0] == 3 else (1.0,)
    centre = a[:, m : h - m, m : w - m]
    if m > 0:
        ssd = sum(
            wt * cv2.matchTemplate(b[c], centre[c], cv2.TM_SQDIFF) for c, wt in enumerate(weights)
        )
        dy, dx = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    else:
        dy = dx = 0
    moved = b[:, dy : dy + h - 2 * m, dx : dx + w - 2 * m]
    per_channel = np.abs(centre - moved).mean(axis=(1, 2))
    return float(np.dot(weights, per_channel)) * 255.0


class ShotDetector:
    """Streaming cut detector; one instance per stream.

    Feed thumbnails in frame order with :meth:`push`; each call returns the frames whose
    decision became final, as ``(frame_index, starts_new_shot)`` in order. A frame is
    decided once ``config.lookahead`` later frames have arrived; :meth:`flush` decides
    the rest at the end of the stream. Frame 0 always starts a shot.
    """

    def __init__(self, config: ShotConfig | None = None) -> None:
        self.config = config if config is not None else ShotConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (the next push is frame 0 of a new stream)."""
        self._thumbs: dict[int, np.ndarray] = {}  # the frames still needed
        self._scores: dict[int, float] = {}  # score[i] compares frame i with i - 1
        self._count = 0  # frames pushed
        self._decided = 0  # frames decided
        self._last_cut = 0

    def push(self, thumb: np.ndarray) -> list[tuple[int, bool]]:
        """Add the next frame's thumbnail (from :func:`make_thumbnail`, all the same shape)."""
        i = self._count
        if i > 0:
            previous = self._thumbs[i - 1]
            if thumb.shape != previous.shape:
                raise ValueError(
                    f"thumbnail shape changed from {previous.shape} to {thumb.shape} at frame {i}"
                )
            self._scores[i] = _shifted_distance(thumb, previous, self.config.max_shift)
        self._thumbs[i] = thumb
        self._count += 1
        decided: list[tuple[int, bool]] = []
        while self._decided + self.config.lookahead < self._count:
            decided.append(self._decide(self._decided))
        return decided

    def flush(self) -> list[tuple[int, bool]]:
        """Decide every remaining frame (end of stream); the detector can then be reused."""
        decided = [self._decide(i) for i in range(self._decided, self._count)]
        self.reset()
        return decided

    def _decide(self, i: int) -> tuple[int, bool]:
        cut = i == 0 or self._is_cut(i)
        if cut:
            self._last_cut = i
        self._decided = i + 1
        # Keep the thumbnails and scores the next decisions still read.
        keep_from = i - max(self.config.window, self.config.lookahead) - 1
        for old in [k for k in self._thumbs if k < keep_from]:
            del self._thumbs[old]
        for old in [k for k in self._scores if k < keep_from]:
            del self._scores[old]
        return i, cut

    def _is_cut(self, i: int) -> bool:
        cfg = self.config
        score = self._scores[i]
        if i - self._last_cut < cfg.min_shot_len or score < cfg.min_score:
            return False
        last = min(self._count - 1, i + cfg.lookahead)
        neighbours = [
            self._scores[k]
            for k in range(i - cfg.window, min(last, i + cfg.window) + 1)
            if k != i and k in self._scores
        ]
        # 1 code value of floor: a still picture has neighbours of ~0 and any cut wins.
        # (Taking the busier side's mean instead of the mean of both sides ignores motion
        # onsets better but misses cuts from a still shot into a moving one: recall fell
        # from 0.89 to 0.76 on benchmarks/cut_detection.py's joined pans.)
        level = max(float(np.mean(neighbours)) if neighbours else 0.0, 1.0)
        if score < cfg.threshold * level:
            return False
        before = self._thumbs[i - 1]
        for k in range(i + 1, last + 1):
            back = _shifted_distance(self._thumbs[k], before, cfg.max_shift)
            if back < cfg.flash_ratio * score:
                return False  # the picture comes back: the start of a flash
        for k in range(max(0, i - 1 - cfg.lookahead), i - 1):
            back = _shifted_distance(self._thumbs[i], self._thumbs[k], cfg.max_shift)
            if back < cfg.flash_ratio * score:
                return False  # the picture came back: the end of a flash
        return True


def split_shots(
    frames: Iterable[tuple[np.ndarray, int | None, float]], config: ShotConfig | None = None
) -> list[Shot]:
    """Run a :class:`ShotDetector` over a whole sequence and return its shots in order.

    Args:
        frames: ``(thumbnail, pts, seconds)`` for each frame in order: the thumbnail from
            :func:`make_thumbnail` (``config.thumb_size``), the frame's pts (or None) and
            its time in seconds.
        config: detector settings (default :class:`ShotConfig`).

    Returns:
        The shots, or an empty list when ``frames`` is empty.
    """
    detector = ShotDetector(config)
    times: list[tuple[int | None, float]] = []
    starts: list[int] = []
    for thumb, pts, seconds in frames:
        times.append((pts, seconds))
        starts += [i for i, cut in detector.push(thumb) if cut]
    starts += [i for i, cut in detector.flush() if cut]
    ends = starts[1:] + [len(times)]
    return [Shot(s, e - s, times[s][0], times[s][1]) for s, e in zip(starts, ends)]
