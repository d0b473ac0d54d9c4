"""HDR10 static metadata: read it from a decoded frame, hand it to the encoder.

PyAV decodes mastering-display colour volume and content light level (from the bitstream's
SEI or the container's MKV/MP4 boxes, which FFmpeg attaches to every decoded frame) as frame
side data, but cannot attach side data to frames it encodes. The encoders that can write
them take them as parameters instead (x265 ``master-display``/``max-cll``, x264
``mastering-display``/``cll``, SVT-AV1 ``mastering-display``/``content-light``), which puts
the SEI/OBU metadata in every keyframe.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
from av.sidedata.sidedata import Type

log = logging.getLogger(__name__)

# Dynamic (per-scene) HDR metadata: neither PyAV nor the encoders' parameters can carry it.
_DYNAMIC = {
    Type.DYNAMIC_HDR_PLUS: "HDR10+",
    Type.DOVI_RPU_BUFFER: "Dolby Vision",
    Type.DOVI_METADATA: "Dolby Vision",
    Type.DYNAMIC_HDR_VIVID: "HDR Vivid",
}
# AVMasteringDisplayMetadata: 10 AVRationals (R, G, B primaries x/y, white point x/y,
# min and max luminance), then has_primaries and has_luminance.
_MDCV = struct.Struct("=22i")
_CLL = struct.Struct("=2I")


@dataclass(frozen=True)
class MasteringDisplay:
    """Mastering display colour volume (SMPTE ST 2086), in CIE 1931 xy and cd/m2.

    ``primaries`` is ``((rx, ry), (gx, gy), (bx, by))``."""

    primaries: tuple[tuple[Fraction, Fraction], ...]
    white_point: tuple[Fraction, Fraction]
    min_luminance: Fraction
    max_luminance: Fraction


@dataclass(frozen=True)
class HdrMetadata:
    """HDR metadata found on the first decoded frame.

    Attributes:
        mastering: the mastering display, or ``None``.
        light_level: ``(MaxCLL, MaxFALL)`` in cd/m2, or ``None``.
        dynamic: names of dynamic metadata kinds present (not carried to the output).
    """

    mastering: MasteringDisplay | None = None
    light_level: tuple[int, int] | None = None
    dynamic: tuple[str, ...] = ()

    @property
    def static(self) -> bool:
        return self.mastering is not None or self.light_level is not None


def hdr_from_frame(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR metadata of a decoded frame, ``None`` when it has none."""
    mastering, light, dynamic = None, None, []
    for item in frame.side_data:
        if item.type == Type.MASTERING_DISPLAY_METADATA:
            mastering = _parse_mastering(bytes(item))
        elif item.type == Type.CONTENT_LIGHT_LEVEL and len(bytes(item)) >= _CLL.size:
            max_cll, max_fall = _CLL.unpack_from(bytes(item))
            light = (int(max_cll), int(max_fall))
        elif item.type in _DYNAMIC and _DYNAMIC[item.type] not in dynamic:
            dynamic.append(_DYNAMIC[item.type])
    if mastering is None and light is None and not dynamic:
        return None
    return HdrMetadata(mastering, light, tuple(dynamic))


def _parse_mastering(data: bytes) -> MasteringDisplay | None:
    if len(data) < _MDCV.size:
        return None
    v = _MDCV.unpack_from(data)
    has_primaries, has_luminance = v[20], v[21]
    if not (has_primaries and has_luminance):
        return None  # a half-filled record: x265 and x264 take only the complete one
    q = [Fraction(v[i], v[i + 1]) if v[i + 1] else Fraction(0) for i in range(0, 20, 2)]
    return MasteringDisplay(
        primaries=((q[0], q[1]), (q[2], q[3]), (q[4], q[5])),
        white_point=(q[6], q[7]),
        min_luminance=q[8],
        max_luminance=q[9],
    )


def _display(
    m: MasteringDisplay, xy: Callable[[Fraction], str], cd: Callable[[Fraction], str]
) -> str:
    """``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``, each chromaticity coordinate written by
    ``xy`` and each luminance (cd/m2) by ``cd``: the syntax x264, x265 and SVT-AV1 share."""
    (rx, ry), (gx, gy), (bx, by) = m.primaries
    (wx, wy) = m.white_point
    return (
        f"G({xy(gx)},{xy(gy)})B({xy(bx)},{xy(by)})R({xy(rx)},{xy(ry)})WP({xy(wx)},{xy(wy)})"
        f"L({cd(m.max_luminance)},{cd(m.min_luminance)})"
    )


def _x26x_display(m: MasteringDisplay) -> str:
    """Chromaticity in 0.00002, luminance in 0.0001 cd/m2 units (the HEVC/H.264 SEI's own)."""
    return _display(m, lambda v: str(round(v * 50000)), lambda v: str(round(v * 10000)))


def _svt_display(m: MasteringDisplay) -> str:
    """Chromaticity and luminance as decimals (5 and 4 places)."""
    return _display(m, lambda v: f"{float(v):.5f}", lambda v: f"{float(v):.4f}")


# How each encoder takes HDR10 static metadata: (options key, mastering-display parameter,
# its formatter, light-level parameter).
_HDR_PARAMS: dict[str, tuple[str, str, Callable[[MasteringDisplay], str], str]] = {
    "libx265": ("x265-params", "master-display", _x26x_display, "max-cll"),
    "libx264": ("x264-params", "mastering-display", _x26x_display, "cll"),
    "libsvtav1": ("svtav1-params", "mastering-display", _svt_display, "content-light"),
}


def hdr_encoder_options(codec: str, hdr: HdrMetadata | None, options: dict[str, str]) -> None:
    """Add the parameters that make ``codec`` write ``hdr``'s static metadata to
    ``options`` (merged with any ``*-params`` already there); warn, naming it, about
    metadata the output will not carry."""
    if hdr is None:
        return
    if hdr.dynamic:
        log.warning(
            "%s dynamic HDR metadata is not carried to the output (only HDR10 "
            "static metadata is); the output plays as plain HDR10",
            " and ".join(hdr.dynamic),
        )
    if not hdr.static:
        return
    syntax = _HDR_PARAMS.get(codec)
    if syntax is None:
        log.warning(
            "HDR10 mastering-display and light-level metadata is not carried by %s; "
            "use libx265, libx264 or libsvtav1 to keep it",
            codec,
        )
        return
    key, display_key, display, light_key = syntax
    params: list[str] = []
    if hdr.mastering:
        params.append(f"{display_key}={display(hdr.mastering)}")
    if hdr.light_level:
        params.append("{}={},{}".format(light_key, *hdr.light_level))
    options[key] = ":".join(filter(None, [options.get(key, ""), *params]))
