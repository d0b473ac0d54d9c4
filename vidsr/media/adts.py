"""Copy ADTS AAC (the AAC of MPEG-TS and ``.aac`` files) into AVI.

ADTS AAC carries its configuration in a 7-byte header on every frame and none in the
stream's parameters. The AVI muxer needs the configuration (an AudioSpecificConfig) in
its header, before the first packet, and has no automatic ``aac_adtstoasc`` as the MP4
and Matroska muxers do: it refuses the stream ("ADTS is only supported with codec tag
0x1610", a tag FFmpeg itself does not decode). So the configuration is built from the
first frame's header, and each packet loses its header through ``aac_adtstoasc``, as
``ffmpeg -c:a copy out.avi`` writes it.
"""

from __future__ import annotations

from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

# Output containers that need this (the others convert ADTS themselves).
ADTS_CONTAINERS = frozenset({"avi"})


def is_adts(stream: av.stream.Stream) -> bool:
    """An AAC stream without a configuration in its parameters: ADTS framed."""
    cc = stream.codec_context
    return cc is not None and cc.name == "aac" and not cc.extradata


def asc_from_adts(header: bytes) -> bytes:
    """The 2-byte AudioSpecificConfig that an ADTS frame header describes (object type,
    sampling rate index and channel configuration, ISO/IEC 14496-3 1.6.2.1).

    Raises:
        ValueError: ``header`` does not start with an ADTS sync word.
    """
    if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF0 != 0xF0:
        raise ValueError("not an ADTS frame header")
    object_type = (header[2] >> 6) + 1  # the header stores the profile: type - 1
    rate_index = (header[2] >> 2) & 0x0F
    channels = ((header[2] & 0x01) << 2) | (header[3] >> 6)
    return ((object_type << 11) | (rate_index << 7) | (channels << 3)).to_bytes(2, "big")


class AdtsToRaw:
    """Raw AAC packets, and the configuration to put in the output stream, for the ADTS
    stream ``template`` of the file at ``path`` (used from the encode thread only).

    Raises:
        ValueError: the stream's first packet is not ADTS framed.
        av.error.FFmpegError, OSError: the file cannot be read.
    """

    def __init__(self, path: Path, template: av.stream.Stream) -> None:
        self.extradata = asc_from_adts(_first_payload(path, template.index))
        self._bsf = BitStreamFilterContext("aac_adtstoasc", in_stream=template)

    def filter(self, packet: av.Packet) -> list[av.Packet]:
        """``packet`` without its ADTS header (timestamps kept)."""
        return list(self._bsf.filter(packet))


def _first_payload(path: Path, index: int) -> bytes:
    with av.open(str(path), metadata_errors="replace") as container:
        for packet in container.demux(container.streams[index]):
            if packet.size > 0:
                return bytes(packet)
    raise ValueError(f"stream #{index} has no packet")
