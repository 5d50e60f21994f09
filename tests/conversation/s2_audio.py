"""Audio files for the S2 tests: recordings as a client sends them, answers read back."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from bench.audio import INPUT_RATE


def recording(pcm: bytes, muxer: str = "webm", codec: str = "libopus") -> bytes:
    """16 kHz PCM16 as a whole file, as a client records it (WebM/Opus, MediaRecorder's
    format, by default; ``"wav", "pcm_s16le"`` for a WAV)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as container:
        stream = container.add_stream(codec, rate=48000 if codec == "libopus" else INPUT_RATE)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = INPUT_RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@dataclass(frozen=True)
class Played:
    """An audio file decoded whole, as a player would."""

    container: str  # FFmpeg's first name for it: "matroska" for WebM, "mp3", "wav"...
    codec: str
    rate: int
    samples: np.ndarray  # mono, on the int16 scale

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.samples**2))) if len(self.samples) else 0.0


def played(data: bytes) -> Played:
    """Decode ``data`` with PyAV (its container read from the bytes)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        parts = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        name = container.format.name.split(",")[0]
        codec, rate = stream.codec_context.name, stream.codec_context.sample_rate
    samples = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    if len(samples) and np.abs(samples).max() <= 1.0:  # float decoders (mp3, opus)
        samples *= 32767
    return Played(name, codec, rate, samples)
