"""Host-side planar YUV frames: the plane type, the frame record, padded-buffer copies and
the chroma subsampling rule, shared by decoding, encoding, capture and the compute stage.

A frame on the host is three numpy planes ``(Y, U, V)``: ``(H, W)`` luma and ``(Hc, Wc)``
chroma, uint8 codes for 8-bit formats and uint16 codes for deeper ones. FFmpeg pads
every plane's rows to ``line_size`` bytes; :func:`plane_to_array` and
:func:`array_to_plane` copy between such a padded plane and a contiguous array.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class HostFrame:
    """One decoded frame on the host.

    Attributes:
        index: 0-based decode order index.
        pts: presentation timestamp in the input stream's ``time_base``.
        duration: frame duration in the same time base (0 when unknown).
        planes: ``(Y, U, V)``: ``(H, W)`` and ``(Hc, Wc)`` arrays, uint8 for 8-bit formats,
            uint16 for deeper ones, holding the codes of ``VideoInfo.work_format``.
        new_shot: set by the shot detector when this frame starts a shot.
    """

    index: int
    pts: int
    duration: int
    planes: Planes
    new_shot: bool = False


def chroma_shift(fmt_name: str) -> tuple[int, int]:
    """log2 chroma subsampling ``(vertical, horizontal)`` of a pixel format, as FFmpeg's
    format descriptor has it: ``(1, 1)`` for 4:2:0 (``yuv420p``, ``nv12``, ``p010le``...),
    ``(0, 1)`` for 4:2:2, ``(0, 0)`` for 4:4:4, RGB and grey.

    Raises:
        ValueError: FFmpeg does not know ``fmt_name``.
    """
    probe = 1 << 8  # a size every subsampling divides
    fmt = av.VideoFormat(fmt_name, probe, probe)
    return (
        (probe // fmt.chroma_height(probe)).bit_length() - 1,
        (probe // fmt.chroma_width(probe)).bit_length() - 1,
    )


def chroma_size(fmt_name: str, height: int, width: int) -> tuple[int, int]:
    """Chroma plane ``(Hc, Wc)`` of a ``height x width`` frame in format ``fmt_name``
    (subsampled sizes round up, as FFmpeg allocates them)."""
    shift_v, shift_h = chroma_shift(fmt_name)
    return -(-height >> shift_v), -(-width >> shift_h)


def _rows(plane: av.video.plane.VideoPlane, dtype: np.dtype | type) -> np.ndarray:
    """The plane's buffer as ``(height, line_size / itemsize)`` rows, padding included."""
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)


def plane_to_array(plane: av.video.plane.VideoPlane, dtype: np.dtype | type) -> np.ndarray:
    """Copy a (possibly line-padded) frame plane into a contiguous ``(h, w)`` array."""
    return np.ascontiguousarray(_rows(plane, dtype)[:, : plane.width])


def array_to_plane(
    data: np.ndarray, plane: av.video.plane.VideoPlane, dtype: np.dtype | type
) -> None:
    """Copy an ``(h, w)`` array into a (possibly line-padded) frame plane of ``dtype``
    samples (values are cast to ``dtype``)."""
    _rows(plane, dtype)[:, : plane.width] = data
