"""Audio helpers of the cloud adapters: the empty stream, and PCM out of a streamed WAV."""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator

__all__ = ["WavFormatError", "WavStream", "empty_audio", "is_audio"]


async def empty_audio() -> AsyncGenerator[bytes, None]:
    """A stream with no audio (blank text needs no request)."""
    return
    yield  # pragma: no cover  # the yield makes this an async generator


def is_audio(content_type: str | None) -> bool:
    """False for a body that is plainly not audio: JSON, or text such as a proxy's HTML page
    (providers label raw PCM variously: audio/pcm, audio/l16, application/octet-stream)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return not (kind.startswith("text/") or kind.endswith("json"))


class WavFormatError(ValueError):
    """The stream is not PCM16 mono WAV at the expected rate."""


class WavStream:
    """Strips the RIFF/WAVE header off a streamed WAV and checks its format.

    A streamed WAV's sizes are unknown when the header is written (placeholders such as
    0xFFFFFFFF), so the data chunk is taken to run to the end of the stream.
    """

    def __init__(self, expected_rate: int) -> None:
        self._expected_rate = expected_rate
        self._head = bytearray()
        self._in_data = False

    def feed(self, chunk: bytes) -> bytes:
        """The PCM in ``chunk`` (empty while the header is still incomplete)."""
        if self._in_data:
            return chunk
        self._head += chunk
        if len(self._head) < 12:
            return b""
        if self._head[:4] != b"RIFF" or self._head[8:12] != b"WAVE":
            raise WavFormatError("not a WAV stream")
        offset = 12
        while len(self._head) >= offset + 8:
            kind = bytes(self._head[offset : offset + 4])
            (size,) = struct.unpack_from("<I", self._head, offset + 4)
            body = offset + 8
            if kind == b"data":
                self._in_data = True
                pcm = bytes(self._head[body:])
                self._head.clear()
                return pcm
            if len(self._head) < body + size:
                return b""
            if kind == b"fmt ":
                self._check_format(bytes(self._head[body : body + size]))
            offset = body + size + size % 2  # chunks are padded to even sizes
        return b""

    def _check_format(self, fmt: bytes) -> None:
        if len(fmt) < 16:
            raise WavFormatError("short fmt chunk")
        audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
        if (audio_format, channels, bits) != (1, 1, 16) or rate != self._expected_rate:
            raise WavFormatError("not PCM16 mono at the requested rate")
