"""FFmpeg's own scaler (libswscale) for the interpolation baselines, on 8-bit frames.

``--resampler swscale``: instead of the MATLAB-exact kernel
(:class:`~vidsr.models.interp.Interpolator` on luma, OpenCV on chroma), a whole frame
goes through FFmpeg's ``scale`` filter in a PyAV filter graph (``buffer -> scale ->
buffersink``), what ``ffmpeg -vf scale=...`` runs. The kernels are the same curves:
``bicubic`` is swscale's Mitchell-Netravali cubic with ``B = 0, C = 0.5`` (Keys
``a = -0.5``, MATLAB's), ``lanczos`` has 3 lobes. What differs from the exact path is the
arithmetic (swscale's fixed-point taps and rounding: at most one code in the interior, on
average 0.08; ``accurate_rnd`` would bring the mean to 0.015 for 2.5 ms more CPU per 4K
frame, and the ffmpeg CLI does not ask for it either) and the borders: swscale repeats the
edge pixel, MATLAB mirrors the image (``tests/test_resampler.py`` holds the bounds).

Torch-free (the 8-bit path never imports torch).
"""

from __future__ import annotations

import threading

import av
import numpy as np

from vidsr.media.planes import Planes, array_to_plane, plane_to_array

# The scale filter's options per baseline: the same kernels as the exact path.
SWSCALE_OPTIONS: dict[str, str] = {
    "bicubic": "flags=bicubic:param0=0:param1=0.5",
    "lanczos": "flags=lanczos:param0=3",
}
# 8-bit planar YUV work formats, by chroma subsampling (luma / chroma, per axis).
_FORMATS: dict[tuple[int, int], str] = {
    (2, 2): "yuv420p",
    (1, 2): "yuv422p",
    (1, 1): "yuv444p",
    (1, 4): "yuv411p",
    (4, 4): "yuv410p",
    (2, 1): "yuv440p",
}


def planar_format(planes: Planes) -> str:
    """The 8-bit planar format name (``yuv420p``, ``yuv422p``, ``yuv444p``...) whose
    chroma planes have the size of ``planes``' (chroma sizes round up, as FFmpeg's).

    Raises:
        ValueError: uint8 planes in no such format, or planes that are not uint8.
    """
    y, u, _ = planes
    if y.dtype != np.uint8 or u.dtype != np.uint8:
        raise ValueError(f"swscale resampling needs uint8 planes, got {y.dtype}")
    (h, w), (ch, cw) = y.shape, u.shape
    for (sv, sh), name in _FORMATS.items():
        if (-(-h // sv), -(-w // sh)) == (ch, cw):
            return name
    raise ValueError(f"no 8-bit planar YUV format has {cw}x{ch} chroma for {w}x{h} luma")


class SwscaleResampler:
    """Upscales whole 8-bit frames with FFmpeg's ``scale`` filter (libswscale).

    Args:
        kernel: ``bicubic`` or ``lanczos`` (see :data:`SWSCALE_OPTIONS`).
        scale: the integer factor.
        out_format: the output's 8-bit planar work format (``yuv420p``...): its chroma
            planes are scaled to that format's chroma size, as the exact path's are.

    The filter graph is built for the first frame's size and format and rebuilt when they
    change; each thread has its own graph (segmented runs share one processor).

    Raises:
        ValueError: an unknown ``kernel`` or a scale below 1.
    """

    name = "swscale"

    def __init__(self, kernel: str, scale: int, out_format: str) -> None:
        if kernel not in SWSCALE_OPTIONS:
            raise ValueError(f"swscale resampling has bicubic and lanczos, got {kernel!r}")
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.kernel = kernel
        self.scale = scale
        self.out_format = out_format
        self._local = threading.local()

    def _graph(self, width: int, height: int, in_format: str) -> av.filter.Graph:
        """This thread's graph for ``width x height`` frames of ``in_format``."""
        key = (width, height, in_format)
        if getattr(self._local, "key", None) != key:
            graph = av.filter.Graph()
            src = graph.add_buffer(width=width, height=height, format=in_format, time_base="1/1")
            size = f"{width * self.scale}:{height * self.scale}"
            scaler = graph.add("scale", f"{size}:{SWSCALE_OPTIONS[self.kernel]}")
            fmt = graph.add("format", self.out_format)
            sink = graph.add("buffersink")
            src.link_to(scaler)
            scaler.link_to(fmt)
            fmt.link_to(sink)
            graph.configure()
            self._local.graph, self._local.key = graph, key
        return self._local.graph

    def resample(self, planes: Planes) -> Planes:
        """``(Y, U, V)`` uint8 planes of an 8-bit planar frame in; the frame ``scale``
        times larger in :attr:`out_format` out, as contiguous ``(Y, U, V)`` uint8 codes
        (no range or matrix conversion: codes stay codes)."""
        y = planes[0]
        in_format = planar_format(planes)
        frame = av.VideoFrame(y.shape[1], y.shape[0], in_format)
        for plane, data in zip(frame.planes, planes):
            array_to_plane(data, plane, np.uint8)
        graph = self._graph(y.shape[1], y.shape[0], in_format)
        graph.push(frame)
        out = graph.pull()
        big_y, big_u, big_v = (plane_to_array(p, np.uint8) for p in out.planes[:3])
        return big_y, big_u, big_v
