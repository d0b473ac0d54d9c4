"""Re-encode an input audio track for the output (``--audio aac|opus``).

The sink copies audio packets unchanged by default (``--audio copy``). When the output
container cannot hold a track's codec, or the user asks for it, each audio packet is
decoded with the input stream's own decoder and encoded again through PyAV's encoder,
which resamples and re-chunks the samples to the encoder's frame size. Decoded frames
keep their presentation timestamps, so the track stays where it was on the timeline.
"""

from __future__ import annotations

from fractions import Fraction

import av

from vidsr.errors import EncodeError

# --audio value -> FFmpeg encoder.
AUDIO_ENCODERS: dict[str, str] = {"aac": "aac", "opus": "libopus"}
# --audio value -> the codec name containers list in ``supported_codecs``.
AUDIO_CODEC_NAMES: dict[str, str] = {"aac": "aac", "opus": "opus"}
# FFmpeg's default layout per channel count, for inputs whose layout is unordered
# ("2 channels"), which encoders refuse.
_DEFAULT_LAYOUTS = {
    1: "mono",
    2: "stereo",
    3: "2.1",
    4: "quad",
    5: "5.0",
    6: "5.1",
    7: "6.1",
    8: "7.1",
}


class AudioTranscoder:
    """Decodes the packets of one input audio stream and encodes them into a new output
    stream. Used from the encode thread only, like the sink that owns it.

    Args:
        out: the output container, before its header is written.
        template: the input audio stream (of a container the caller keeps open: its
            decoder is used).
        mode: a key of :data:`AUDIO_ENCODERS`.
    """

    def __init__(
        self, out: av.container.OutputContainer, template: av.audio.stream.AudioStream, mode: str
    ) -> None:
        codec = av.codec.Codec(AUDIO_ENCODERS[mode], "w")
        rates = list(codec.audio_rates or [])
        rate = template.rate if not rates or template.rate in rates else 48000
        channels = template.layout.nb_channels
        layout = template.layout.name
        if layout.endswith("channels"):
            layout = _DEFAULT_LAYOUTS.get(channels, "stereo")
        self.index = template.index
        self.stream = out.add_stream(codec.name, rate=rate, layout=layout)
        self.stream.time_base = Fraction(1, rate)
        self.stream.metadata.update(
            {k: v for k, v in template.metadata.items() if k.upper() != "DURATION"}
        )
        self.stream.disposition = template.disposition
        self._decoder = template.codec_context

    def encode(self, packet: av.Packet) -> list[av.Packet]:
        """The output packets (possibly none yet) for one input ``packet``.

        Raises:
            EncodeError: the track cannot be decoded or encoded.
        """
        try:
            frames = self._decoder.decode(packet)
            return [p for frame in frames for p in self.stream.encode(frame)]
        except av.error.InvalidDataError:
            return []  # one damaged audio packet: a short gap, as ffmpeg leaves
        except (av.error.FFmpegError, ValueError) as e:
            raise EncodeError(f"cannot re-encode audio stream #{self.index}: {e}") from e

    def flush(self) -> list[av.Packet]:
        """The encoder's remaining packets, at the end of the run."""
        try:
            frames = self._decoder.decode(None)
            return [p for frame in frames for p in self.stream.encode(frame)] + list(
                self.stream.encode(None)
            )
        except (av.error.FFmpegError, ValueError) as e:
            raise EncodeError(f"cannot finish audio stream #{self.index}: {e}") from e
