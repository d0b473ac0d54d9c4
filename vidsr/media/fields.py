"""Which field of an interlaced frame comes first, as the decoder flagged it.

PyAV (18) exposes a frame's ``interlaced_frame`` but not its ``top_field_first`` flag, so
it is read through FFmpeg's ``fieldorder`` filter, which moves the picture one line when
the frame's flag differs from the order asked for, and passes it untouched otherwise.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter
import numpy as np


def frame_field_order(frame: av.VideoFrame) -> str:
    """``progressive``, ``tt`` (top field first) or ``bb`` (bottom first) for ``frame``,
    from the flags its decoder set. The frame goes through a filter graph, so pass one
    not needed afterwards. A picture whose lines all repeat (no vertical detail) reads
    as ``tt``: its fields are alike either way."""
    if not frame.interlaced_frame:
        return "progressive"
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width,
        height=frame.height,
        format=frame.format,
        time_base=frame.time_base or Fraction(1, 25),
    )
    # fieldorder takes no vertically subsampled chroma: both branches are 4:4:4.
    to_444 = graph.add("format", "yuv444p")
    split = graph.add("split")
    to_tff = graph.add("fieldorder", "tff")
    plain, reordered = graph.add("buffersink"), graph.add("buffersink")
    source.link_to(to_444)
    to_444.link_to(split)
    split.link_to(plain, 0, 0)
    split.link_to(to_tff, 1, 0)
    to_tff.link_to(reordered)
    graph.configure()
    source.push(frame)
    untouched = np.array_equal(plain.pull().to_ndarray(), reordered.pull().to_ndarray())
    return "tt" if untouched else "bb"
