"""G.711 (μ-law and A-law, 8 bits a sample) <-> PCM16 LE, the audio of phone calls.

Telephony providers (Twilio Media Streams, Telnyx) and OpenAI's ``g711_ulaw``/``g711_alaw``
formats carry it. The conversion tables are FFmpeg's own (PyAV's ``pcm_mulaw`` and
``pcm_alaw`` codecs, asked once for every possible sample when this module is imported), so
there is one definition of the companding curve; a conversion is then a table lookup per
sample, cheap enough for 20 ms frames on an event loop.
"""

from __future__ import annotations

import sys
from array import array
from fractions import Fraction
from typing import Literal, get_args

import av
from av.audio.codeccontext import AudioCodecContext

__all__ = ["G711Law", "decode_g711", "encode_g711"]

G711Law = Literal["ulaw", "alaw"]
_CODECS: dict[G711Law, str] = {"ulaw": "pcm_mulaw", "alaw": "pcm_alaw"}
_RATE = 8000  # the codecs need one; the tables do not depend on it


def _all_samples() -> array[int]:
    """Every int16 value, in the order of its two's-complement bits read as unsigned."""
    samples = array("h", range(32768))
    samples.extend(range(-32768, 0))
    return samples


def _context(codec: str, mode: Literal["r", "w"]) -> AudioCodecContext:
    context = av.CodecContext.create(codec, mode)
    assert isinstance(context, AudioCodecContext)
    context.sample_rate = _RATE
    context.layout = "mono"
    return context


def _encode_table(codec: str) -> bytes:
    samples = _all_samples()
    context = _context(codec, "w")
    context.format = "s16"
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(samples))
    frame.planes[0].update(samples.tobytes())
    frame.sample_rate = _RATE
    frame.time_base = Fraction(1, _RATE)
    frame.pts = 0
    packets = [*context.encode(frame), *context.encode(None)]
    table = b"".join(bytes(packet) for packet in packets)
    assert len(table) == 65536, f"{codec} encoded {len(table)} of 65536 samples"
    return table


def _decode_table(codec: str) -> tuple[bytes, ...]:
    context = _context(codec, "r")
    frames = context.decode(av.Packet(bytes(range(256))))
    pcm = array("h")
    for frame in frames:
        pcm.frombytes(bytes(frame.planes[0])[: frame.samples * 2])
    assert len(pcm) == 256, f"{codec} decoded {len(pcm)} of 256 codes"
    return tuple(int(v).to_bytes(2, "little", signed=True) for v in pcm)


_ENCODE = {law: _encode_table(codec) for law, codec in _CODECS.items()}
_DECODE = {law: _decode_table(codec) for law, codec in _CODECS.items()}


def _check(law: str) -> G711Law:
    if law not in get_args(G711Law):
        raise ValueError(f"unknown G.711 law {law!r}; use one of {get_args(G711Law)}")
    return law  # type: ignore[return-value]  # checked just above


def encode_g711(pcm: bytes, law: G711Law) -> bytes:
    """PCM16 LE mono samples as G.711 bytes, one per sample (an odd trailing byte, half a
    sample, is dropped)."""
    samples = array("H", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return bytes(map(_ENCODE[_check(law)].__getitem__, samples))


def decode_g711(data: bytes, law: G711Law) -> bytes:
    """G.711 bytes as PCM16 LE mono samples, two bytes per input byte."""
    return b"".join(map(_DECODE[_check(law)].__getitem__, data))
