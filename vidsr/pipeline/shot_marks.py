"""Mark shot starts on frames as they flow from the decode stage to the compute stage."""

from __future__ import annotations

from collections.abc import Iterator

from vidsr.colour.shots import ShotDetector, make_thumbnail
from vidsr.media.planes import HostFrame
from vidsr.media.sources import StreamPacket


def with_shot_marks(
    items: Iterator[HostFrame | StreamPacket], detector: ShotDetector, bits: int, thumb_size: int
) -> Iterator[HostFrame | StreamPacket]:
    """Set ``HostFrame.new_shot`` from a streaming shot detector.

    ``bits`` is the significant bits of the frames' uint16 planes (ignored for uint8), and
    ``thumb_size`` the detector's thumbnail size (``ShotConfig.thumb_size``). Frames are
    held back until the detector has seen its look-ahead past them (a few frames);
    packets of copied streams pass straight through.
    """
    pending: dict[int, HostFrame] = {}  # keyed by the detector's own frame count
    pushed = 0

    def release(decisions: list[tuple[int, bool]]) -> Iterator[HostFrame]:
        for index, starts_shot in decisions:
            frame = pending.pop(index)
            frame.new_shot = starts_shot
            yield frame

    for item in items:
        if isinstance(item, HostFrame):
            pending[pushed] = item
            pushed += 1
            y, u, v = item.planes
            thumb = make_thumbnail(y, u, v, bits=bits, thumb_size=thumb_size)
            yield from release(detector.push(thumb))
        else:
            yield item
    yield from release(detector.flush())
