"""The interpolation baselines' taps and their 8-bit kernel, without torch.

Bicubic (MATLAB's a = -0.5 kernel) and Lanczos-3 at an integer scale ``s`` are separable
polyphase filters: output pixel ``s*i + p`` is a small 1-D kernel (phase ``p``) over input
pixels around ``i``, on each axis. :func:`polyphase_taps` computes those kernels in
numpy; :class:`~vidsr.models.baselines.PolyphaseUpsampler` (torch) uses the same numbers.
:class:`Interpolator` runs them on 8-bit code planes with OpenCV only, so a run with an
interpolation baseline on the CPU never imports torch (see ``vidsr.engine.integer``).
"""

from __future__ import annotations

import cv2
import numpy as np

KERNELS = ("bicubic", "lanczos")
# Output bytes per band of the 8-bit kernel (:meth:`Interpolator.upsample_u8`): small
# enough that a band's intermediate rows stay in a core's cache.
BAND_BYTES = 512 * 1024


def cubic_taps(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel at distances ``x``; ``a = -0.5`` matches MATLAB."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax < 2, far, 0.0))


def lanczos_taps(x: np.ndarray, lobes: int = 3) -> np.ndarray:
    """Lanczos window of ``lobes`` lobes: ``sinc(x) * sinc(x / lobes)`` for ``|x| < lobes``."""
    return np.where(np.abs(x) < lobes, np.sinc(x) * np.sinc(x / lobes), 0.0)


def polyphase_taps(scale: int, kernel: str) -> np.ndarray:
    """Per-phase 1-D taps for upscaling by ``scale`` (align_corners=False geometry).

    Returns:
        ``(scale, 2R+1)`` float64 weights; row ``p`` gives output pixel ``s*i + p`` as a
        weighted sum of input pixels ``i-R .. i+R``. Each row sums to 1.

    Raises:
        ValueError: an unknown ``kernel``.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be 'bicubic' or 'lanczos', got {kernel!r}")
    support = 2 if kernel == "bicubic" else 3
    radius = support + 1
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    rows = []
    for phase in range(scale):
        shift = (phase + 0.5) / scale - 0.5  # where the output pixel sits, in input pixels
        dist = shift - offsets
        w = cubic_taps(dist) if kernel == "bicubic" else lanczos_taps(dist, support)
        rows.append(w / w.sum())
    return np.stack(rows)


def _pad(plane: np.ndarray, pad: int, axis: int) -> np.ndarray:
    """MATLAB 'symmetric' padding (edge pixel repeated) of ``pad`` on both ends of
    ``axis``; edge replication when the axis is shorter than ``pad`` (as the torch path)."""
    widths = [(0, 0), (0, 0)]
    widths[axis] = (pad, pad)
    mode = "symmetric" if plane.shape[axis] >= pad else "edge"
    return np.pad(plane, widths, mode=mode)


class Interpolator:
    """An interpolation baseline's 8-bit kernel (OpenCV and numpy, no torch).

    Attributes:
        scale / kernel: the integer factor and ``bicubic`` or ``lanczos``.
        name / family / colour / stateful / integer_path: what the pipeline asks of a
            model (as :class:`~vidsr.models.contract.SRModel` gives them): a luma-only,
            stateless baseline with an 8-bit path.
        taps: ``(scale, 2R+1)`` float64 taps (:func:`polyphase_taps`); ``radius``: R.
    """

    family = "baseline"
    colour = "luma"
    stateful = False
    integer_path = True
    self_ensemble = False

    def __init__(self, scale: int, kernel: str = "bicubic") -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        self.kernel = kernel
        self.name = kernel
        self.taps = polyphase_taps(scale, kernel)
        self.radius = (self.taps.shape[1] - 1) // 2
        # Each phase's taps without its zero ends, and where they start: OpenCV's cost
        # grows with the kernel length, and the 7-long bicubic rows hold 4 taps.
        self._phases: list[tuple[int, np.ndarray]] = []
        for row in self.taps:
            nonzero = np.flatnonzero(np.abs(row) > 1e-9)
            first, last = int(nonzero[0]), int(nonzero[-1])
            self._phases.append((first, row[first : last + 1].astype(np.float32)))

    def upsample_u8(self, plane: np.ndarray) -> np.ndarray:
        """``(H, W)`` uint8 codes in, ``(s*H, s*W)`` uint8 codes out.

        Vertical pass first: OpenCV's 8-bit -> int16 ``filter2D`` (16x the value: 4
        extra bits), each phase written straight into its rows of an ``(rows, s, W)``
        buffer; then per phase one int16 -> uint8 ``sepFilter2D`` row pass, which rounds
        and saturates (overshoot clipped to 0..255), and ``cv2.merge`` interleaves the
        phases (the phase becomes the fastest-moving axis) into the output. Within one
        code of the float kernel rounded; borders are MATLAB's symmetric padding (rows
        padded once with numpy's ``symmetric``, columns by ``BORDER_REFLECT``).

        The plane is done in bands of input rows (:data:`BAND_BYTES` of output each), so
        the int16 rows and the phases stay in the CPU's cache: at 1080p -> 4K a third
        less CPU than whole planes, the same codes.
        """
        s, r = self.scale, self.radius
        h, w = plane.shape
        if s == 1:
            return plane.copy()
        if min(h, w) <= r:  # too small for OpenCV's mirror padding
            return self._upsample_small(plane)
        band = max(8, BAND_BYTES // (w * s * s))
        padded = np.pad(plane, ((r, r), (0, 0)), mode="symmetric")
        out = np.empty((h * s, w * s), np.uint8)
        # Reused per band: the vertical phases (with room for the rows past the band that
        # each filter2D call also writes) and the horizontal phases.
        rows = np.empty((min(band, h) + 2 * r, s, w), np.int16)
        phases = [np.empty((min(band, h) * s, w), np.uint8) for _ in range(s)]
        for first_row in range(0, h, band):
            self._band(padded, first_row, min(band, h - first_row), rows, phases, out)
        return out

    def _band(
        self,
        padded: np.ndarray,
        start: int,
        n: int,
        rows: np.ndarray,
        phases: list[np.ndarray],
        out: np.ndarray,
    ) -> None:
        """Input rows ``start .. start+n`` (of the row-padded plane ``padded``) into output
        rows ``s*start .. s*(start+n)`` of ``out``."""
        s, r = self.scale, self.radius
        w = padded.shape[1]
        for p, (first, taps) in enumerate(self._phases):
            # Output row j = sum_t taps[t] * padded[start + first + j + t] (anchor 0); the
            # rows past n read OpenCV's own border and are never used.
            src = padded[start + first : start + first + n + len(taps) - 1]
            cv2.filter2D(
                src,
                cv2.CV_16S,
                taps[:, None] * 16.0,
                dst=rows[: src.shape[0], p],
                anchor=(0, 0),
                borderType=cv2.BORDER_REFLECT,
            )
        tall = rows[:n].reshape(n * s, w)
        one = np.ones((1, 1), np.float32)
        for p, (first, taps) in enumerate(self._phases):
            cv2.sepFilter2D(
                tall,
                cv2.CV_8U,
                taps[None, :] / 16.0,
                one,
                dst=phases[p][: n * s],
                anchor=(r - first, 0),
                borderType=cv2.BORDER_REFLECT,
            )
        merged = out[start * s : (start + n) * s].reshape(n * s, w, s)
        cv2.merge([ph[: n * s] for ph in phases], dst=merged)

    def _upsample_small(self, plane: np.ndarray) -> np.ndarray:
        """The same filter in float64 numpy, for planes of at most ``radius`` pixels a
        side (rounded and clipped to uint8 codes)."""
        x = plane.astype(np.float64)
        for axis in (1, 0):
            size = x.shape[axis]
            padded = _pad(x, self.radius, axis)
            phases = []
            for row in self.taps:
                acc = np.zeros_like(x)
                for k, weight in enumerate(row):
                    if abs(weight) > 1e-9:
                        acc += weight * np.take(padded, range(k, k + size), axis=axis)
                phases.append(acc)
            merged = list(x.shape)
            merged[axis] *= self.scale
            x = np.stack(phases, axis=axis + 1).reshape(merged)
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
