"""The planes a compute stage reads and writes (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from vidsr.colour.convert import YuvFormat


@dataclass(frozen=True)
class PlaneFormats:
    """The planes a processor reads and writes.

    Attributes:
        in_fmt / out_fmt: matrix, range and bits of the input and output planes.
        out_format: the output work format name (decides the chroma plane size).
    """

    in_fmt: YuvFormat
    out_fmt: YuvFormat
    out_format: str
