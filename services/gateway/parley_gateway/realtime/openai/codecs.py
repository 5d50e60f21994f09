"""Audio at the edge: OpenAI Realtime's formats to and from the pipeline's PCM16.

OpenAI's formats are ``audio/pcm`` (PCM16 LE mono, 24 kHz only) and G.711 ``audio/pcmu``
(μ-law) / ``audio/pcma`` (A-law) at 8 kHz. The STT takes PCM16 16 kHz; the TTS speaks at the
session's output rate, which is chosen to match the output format when the session starts,
so resampling on the way out happens only after a later change of format.
"""

from __future__ import annotations

from typing import Literal

from parley_common.audio.g711 import G711Law, decode_g711, encode_g711
from parley_common.audio.resampling import StreamResampler
from parley_common.bus.audio import INPUT_SAMPLE_RATE

AudioFormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
PCM_RATE = 24_000  # the only rate of OpenAI's audio/pcm
G711_RATE = 8_000
_LAWS: dict[AudioFormatType, G711Law] = {"audio/pcmu": "ulaw", "audio/pcma": "alaw"}


def format_rate(fmt: AudioFormatType) -> int:
    """The sample rate of a format."""
    return PCM_RATE if fmt == "audio/pcm" else G711_RATE


class InputConverter:
    """Client audio in ``fmt`` to the PCM16 16 kHz the STT takes."""

    def __init__(self, fmt: AudioFormatType) -> None:
        self.format = fmt
        self._law = _LAWS.get(fmt)
        self._resampler = StreamResampler(format_rate(fmt), INPUT_SAMPLE_RATE)

    def process(self, data: bytes) -> bytes:
        """Convert the next chunk of the client's audio."""
        if self._law is not None:
            data = decode_g711(data, self._law)
        return self._resampler.process(data)

    def flush(self) -> bytes:
        """The tail held back by the resampler (at the end of a committed buffer)."""
        return self._resampler.flush()


class OutputConverter:
    """The session's PCM16 at ``source_rate`` to ``fmt`` for the client."""

    def __init__(self, fmt: AudioFormatType, source_rate: int) -> None:
        self.format = fmt
        self.source_rate = source_rate
        self._law = _LAWS.get(fmt)
        self._resampler = StreamResampler(source_rate, format_rate(fmt))

    def process(self, pcm: bytes) -> bytes:
        """Convert the next chunk of the assistant's audio."""
        out = self._resampler.process(pcm)
        return encode_g711(out, self._law) if self._law is not None else out
