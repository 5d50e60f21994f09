"""PCM16 LE mono -> a complete, playable audio file, for ``POST /api/v1/voice/tts`` answers
(``Encoding``) and S2's voice chat answers (``AudioFormat``: those, plus WebM).

=========  =====================  =================================================
encoding   MIME type              container / codec, accepted ``sample_rate`` (Hz)
=========  =====================  =================================================
mp3        ``audio/mpeg``         MP3 (LAME, 64 kbit/s mono): the MPEG rates 8000-48000
wav        ``audio/wav``          RIFF WAVE, PCM16 LE: 8000-192000
opus       ``audio/ogg``          Ogg Opus (libopus, 32 kbit/s): 8000, 12000, 16000,
                                  24000, 48000. Opus players always output 48 kHz; the
                                  rate chosen sets the encoded band and is stored in
                                  the header as the input rate.
flac       ``audio/flac``         FLAC, 16 bit: 8000-192000
webm       ``audio/webm``         WebM Opus (libopus, 32 kbit/s), what MediaRecorder
                                  records and browsers' ``new Audio()`` plays: the
                                  Opus rates above
pcm        ``audio/pcm``          no container: PCM16 LE mono samples, 8000-192000
                                  (``audio/L16`` would mean big-endian, RFC 2586, so
                                  it is not used; the rate travels beside the bytes)
=========  =====================  =================================================

No audio at all gives a file of headers only: WAV and FLAC open as 0 samples (MP3 is then
its ID3 tag alone, Ogg Opus its two header pages, WebM its EBML header). A rate outside the
list is a ``BadInputError`` (``audio_rate_unsupported``), an unknown encoding
``audio_encoding_unsupported``. Encoding blocks; use ``encode_pcm_async`` on a loop.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import get_args

import av

from parley_common.audio._pcm import pcm_frames, resample_pcm
from parley_common.contracts.audio import AudioFormat, Encoding
from parley_common.errors import BadInputError

__all__ = [
    "AUDIO_ENCODING_UNSUPPORTED",
    "AUDIO_RATE_UNSUPPORTED",
    "AudioFormat",
    "EncodedAudio",
    "Encoding",
    "encodable_rate",
    "encode_pcm",
    "encode_pcm_async",
    "mime_type",
    "supported_rates",
]

AUDIO_ENCODING_UNSUPPORTED = "audio_encoding_unsupported"
AUDIO_RATE_UNSUPPORTED = "audio_rate_unsupported"


_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_PCM_RANGE = (8000, 192_000)


@dataclass(frozen=True, slots=True)
class _Codec:
    container: str | None  # FFmpeg muxer; None: raw samples
    codec: str
    mime_type: str
    rates: tuple[int, ...] | None  # None: any rate in _PCM_RANGE
    bit_rate: int | None = None


_CODECS: dict[str, _Codec] = {
    "mp3": _Codec("mp3", "libmp3lame", "audio/mpeg", _MP3_RATES, 64_000),
    "wav": _Codec("wav", "pcm_s16le", "audio/wav", None),
    "opus": _Codec("ogg", "libopus", "audio/ogg", _OPUS_RATES, 32_000),
    "flac": _Codec("flac", "flac", "audio/flac", None),
    "pcm": _Codec(None, "pcm_s16le", "audio/pcm", None),
    "webm": _Codec("webm", "libopus", "audio/webm", _OPUS_RATES, 32_000),
}
assert set(_CODECS) == set(get_args(AudioFormat))
assert set(get_args(Encoding)) < set(_CODECS)


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """A complete audio file: its bytes, MIME type, encoding and sample rate."""

    data: bytes
    mime_type: str
    encoding: AudioFormat
    sample_rate: int


def mime_type(encoding: AudioFormat) -> str:
    """The ``Content-Type`` of an ``encoding``'s files."""
    return _codec(encoding).mime_type


def supported_rates(encoding: AudioFormat) -> tuple[int, ...] | tuple[int, int]:
    """The sample rates an ``encoding`` accepts: a list, or (min, max) for any rate between."""
    codec = _codec(encoding)
    return codec.rates if codec.rates is not None else _PCM_RANGE


def encodable_rate(encoding: AudioFormat, rate: int) -> int:
    """The rate closest to ``rate`` that ``encoding`` takes: ``rate`` itself when it can,
    else the lowest listed rate above it (so no band is lost), else the highest one."""
    codec = _codec(encoding)
    if codec.rates is None:
        return min(max(rate, _PCM_RANGE[0]), _PCM_RANGE[1])
    if rate in codec.rates:
        return rate
    return min((r for r in codec.rates if r > rate), default=max(codec.rates))


def encode_pcm(
    pcm: bytes, source_rate: int, encoding: AudioFormat, sample_rate: int
) -> EncodedAudio:
    """Encode PCM16 LE mono at ``source_rate`` Hz as a whole ``encoding`` file at
    ``sample_rate`` Hz (resampled when the two differ). Blocking."""
    codec = _codec(encoding)
    _check_rate(codec, encoding, sample_rate)
    audio = resample_pcm(pcm, source_rate, sample_rate)
    data = audio if codec.container is None else _mux(codec, audio, sample_rate)
    return EncodedAudio(
        data=data, mime_type=codec.mime_type, encoding=encoding, sample_rate=sample_rate
    )


async def encode_pcm_async(
    pcm: bytes, source_rate: int, encoding: AudioFormat, sample_rate: int
) -> EncodedAudio:
    """``encode_pcm`` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(encode_pcm, pcm, source_rate, encoding, sample_rate)


def _codec(encoding: str) -> _Codec:
    codec = _CODECS.get(encoding)
    if codec is None:
        raise BadInputError(
            f"Unknown audio encoding {encoding!r}: use one of {', '.join(_CODECS)}.",
            code=AUDIO_ENCODING_UNSUPPORTED,
        )
    return codec


def _check_rate(codec: _Codec, encoding: str, rate: int) -> None:
    if codec.rates is not None:
        if rate not in codec.rates:
            listed = ", ".join(str(r) for r in codec.rates)
            raise BadInputError(
                f"{encoding} cannot be encoded at {rate} Hz: use one of {listed}.",
                code=AUDIO_RATE_UNSUPPORTED,
            )
    elif not _PCM_RANGE[0] <= rate <= _PCM_RANGE[1]:
        raise BadInputError(
            f"{encoding} sample_rate must be between {_PCM_RANGE[0]} and {_PCM_RANGE[1]} Hz.",
            code=AUDIO_RATE_UNSUPPORTED,
        )


def _mux(codec: _Codec, pcm: bytes, rate: int) -> bytes:
    assert codec.container is not None
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=codec.container) as container:
        stream = container.add_stream(codec.codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        if codec.bit_rate is not None:
            stream.bit_rate = codec.bit_rate
        # PyAV converts each frame to the encoder's sample format and frame size itself.
        for frame in pcm_frames(pcm, rate):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        # PyAV writes the header with the first packet: with none (no audio at all) the
        # file would be 0 bytes instead of a valid empty one.
        container.start_encoding()
    return buffer.getvalue()
