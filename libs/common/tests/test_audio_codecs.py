"""The audio layer of the REST voice routes, on real PyAV codecs: every accepted upload format
decodes to 16 kHz mono of the right length and content, every refusal has its code and comes
fast, every reply encoding is a whole playable file at the requested rate with its MIME
type, and speed/pitch change what they say and nothing else."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from parley_common.audio import (
    DecodeLimits,
    InputFormat,
    apply_effects,
    apply_effects_async,
    decode_upload,
    decode_upload_async,
    encode_pcm,
    encode_pcm_async,
    mime_type,
    sniff,
)
from parley_common.audio.encode import Encoding
from parley_common.errors import BadInputError

Samples = npt.NDArray[np.float64]

SOURCE_RATE = 48_000
STT_RATE = 16_000
SECONDS = 3.0


def chirp(rate: int, seconds: float = SECONDS) -> Samples:
    """A 300 -> 3000 Hz sweep at half scale: any shift or distortion shows in a correlation."""
    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = 300.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t**2)
    return 0.5 * np.sin(phase)


def tone(rate: int, hz: float = 440.0, seconds: float = SECONDS) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return pcm16(0.5 * np.sin(2 * np.pi * hz * t))


def pcm16(samples: Samples) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def samples_of(pcm: bytes) -> Samples:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32767


class _WriteOnly(io.RawIOBase):
    """An output that cannot seek back, like MediaRecorder's: the muxer writes no duration."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


def make_file(
    muxer: str,
    codec: str,
    samples: Samples,
    rate: int = SOURCE_RATE,
    *,
    channels: int = 1,
    seekable: bool = True,
    options: dict[str, str] | None = None,
) -> bytes:
    """``samples`` encoded by PyAV as ``codec`` in ``muxer``, the way a client would send it."""
    layout = "stereo" if channels == 2 else "mono"
    planes = np.tile(samples, (channels, 1))
    # s16 interleaved: one row of channel-interleaved samples.
    interleaved = (planes.T.reshape(1, -1) * 32767).astype(np.int16)
    sink: io.BytesIO | _WriteOnly = io.BytesIO() if seekable else _WriteOnly()
    with av.open(sink, mode="w", format=muxer, options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return sink.getvalue() if isinstance(sink, io.BytesIO) else bytes(sink.data)


def silent_wav(rate: int, seconds: int) -> bytes:
    """A long valid WAV built in no time: 8-bit silence (0x80 is the 8-bit zero)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * (rate * seconds))
    return buffer.getvalue()


def best_correlation(got: Samples, want: Samples, max_lag: int) -> float:
    """Pearson correlation of ``got`` and ``want`` at the best alignment within ``max_lag``
    samples (lossy codecs add a few milliseconds of delay)."""
    best = -1.0
    n = min(len(got), len(want)) - max_lag
    for lag in range(-max_lag, max_lag + 1):
        a = got[max(lag, 0) : max(lag, 0) + n]
        b = want[max(-lag, 0) : max(-lag, 0) + n]
        best = max(best, float(np.corrcoef(a, b)[0, 1]))
    return best


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = samples_of(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


OUTCOMES = {
    "decoded",
    "audio_empty",
    "audio_too_large",
    "audio_too_long",
    "audio_unreadable",
    "audio_unsupported",
}


def outcome(data: bytes) -> str:
    """``decoded``, or the code of the refusal; anything else raised fails the test."""
    try:
        decode_upload(data)
    except BadInputError as refused:
        return refused.code
    return "decoded"


def code_of(data: bytes, limits: DecodeLimits | None = None) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(BadInputError) as caught:
        decode_upload(data, limits)
    return caught.value.code, time.perf_counter() - started


# (muxer, codec, sniffed container, duration tolerance: one codec frame; two for FFmpeg's AAC
# encoder, whose 1024-sample priming no edit list trims)
INPUTS = [
    ("wav", "pcm_s16le", InputFormat.WAV, 0.001),
    ("webm", "libopus", InputFormat.WEBM, 0.020),
    ("ogg", "libopus", InputFormat.OGG, 0.020),
    ("mp3", "libmp3lame", InputFormat.MP3, 1152 / SOURCE_RATE),
    ("flac", "flac", InputFormat.FLAC, 0.001),
    ("ipod", "aac", InputFormat.M4A, 2 * 1024 / SOURCE_RATE),
    ("adts", "aac", InputFormat.AAC, 2 * 1024 / SOURCE_RATE),
]


@pytest.mark.parametrize(("muxer", "codec", "container", "frame_s"), INPUTS)
@pytest.mark.parametrize("channels", [1, 2])
def test_each_upload_format_decodes_to_16k_mono_of_the_same_sound(
    muxer: str, codec: str, container: InputFormat, frame_s: float, channels: int
) -> None:
    data = make_file(muxer, codec, chirp(SOURCE_RATE), channels=channels)

    decoded = decode_upload(data)

    assert decoded.source_format is container
    assert decoded.sample_rate == STT_RATE
    assert abs(decoded.duration_s - SECONDS) <= frame_s + 1 / STT_RATE
    got = samples_of(decoded.pcm)
    assert best_correlation(got, chirp(STT_RATE), max_lag=int(0.03 * STT_RATE)) > 0.9


def test_mediarecorder_webm_without_a_duration_decodes_whole() -> None:
    # MediaRecorder streams its WebM: no duration in the header, no cues.
    data = make_file("webm", "libopus", chirp(SOURCE_RATE), seekable=False)
    with av.open(io.BytesIO(data), mode="r") as probe:
        assert probe.duration is None

    decoded = decode_upload(data)

    assert abs(decoded.duration_s - SECONDS) <= 0.02


def test_safari_fragmented_mp4_decodes_whole() -> None:
    # Safari's MediaRecorder writes audio/mp4: AAC in fragments after an empty moov.
    flags = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    data = make_file("mp4", "aac", chirp(SOURCE_RATE), seekable=False, options=flags)

    decoded = decode_upload(data)

    assert decoded.source_format is InputFormat.M4A
    assert abs(decoded.duration_s - SECONDS) <= 2 * 1024 / SOURCE_RATE


def test_the_bytes_decide_the_format_not_the_file_name(tmp_path: Path) -> None:
    upload = tmp_path / "recording.mp3"
    upload.write_bytes(make_file("wav", "pcm_s16le", chirp(SOURCE_RATE)))

    decoded = decode_upload(upload.read_bytes())

    assert decoded.source_format is InputFormat.WAV
    assert abs(decoded.duration_s - SECONDS) <= 1 / STT_RATE


def test_a_stream_that_changes_rate_midway_decodes_whole() -> None:
    # Two MP3s glued together, 44.1 kHz then 16 kHz, as a naive recorder appends them.
    first = make_file("mp3", "libmp3lame", chirp(44_100), rate=44_100)
    second = make_file(
        "mp3", "libmp3lame", chirp(16_000), rate=16_000, options={"id3v2_version": "0"}
    )

    decoded = decode_upload(first + second)

    # The second file's encoder delay and Xing frame are not trimmed: about 0.1 s more.
    assert abs(decoded.duration_s - 2 * SECONDS) <= 0.15


@pytest.mark.parametrize(("muxer", "codec", "container", "frame_s"), INPUTS)
def test_damaged_uploads_decode_or_are_refused_never_crash(
    muxer: str, codec: str, container: InputFormat, frame_s: float
) -> None:
    rng = np.random.default_rng(3)
    data = make_file(muxer, codec, chirp(SOURCE_RATE, 1.0))
    for attempt in range(60):
        damaged = bytearray(data)
        # Alternately the header region and anywhere; one in five also cut short.
        span = min(len(damaged), 4000) if attempt % 2 else len(damaged)
        for position in rng.integers(0, span, int(rng.integers(1, 20))):
            damaged[position] = int(rng.integers(0, 256))
        if attempt % 5 == 0:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        assert outcome(bytes(damaged)) in OUTCOMES


def test_tags_that_are_not_utf8_do_not_stop_the_decode() -> None:
    wav = make_file("wav", "pcm_s16le", chirp(SOURCE_RATE))
    info = b"INFO" + b"INAM" + (4).to_bytes(4, "little") + b"\xff\xfe\xfa\x00"
    body = wav[12:] + b"LIST" + len(info).to_bytes(4, "little") + info
    tagged = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body

    assert abs(decode_upload(tagged).duration_s - SECONDS) <= 1 / STT_RATE


def test_bare_mp3_and_tagged_adts_are_recognised() -> None:
    bare = make_file("mp3", "libmp3lame", chirp(SOURCE_RATE), options={"id3v2_version": "0"})
    assert bare[:3] != b"ID3"
    adts = make_file("adts", "aac", chirp(SOURCE_RATE))
    # A minimal empty ID3v2.4 tag in front of raw AAC, as some recorders write.
    tagged = b"ID3\x04\x00\x00\x00\x00\x00\x00" + adts

    assert sniff(bare) is InputFormat.MP3
    assert sniff(tagged) is InputFormat.AAC
    assert abs(decode_upload(tagged).duration_s - SECONDS) <= 0.03


@pytest.mark.parametrize(
    ("muxer", "codec"), [("webm", "libopus"), ("ipod", "aac"), ("flac", "flac")]
)
def test_a_file_cut_in_half_is_unreadable(muxer: str, codec: str) -> None:
    data = make_file(muxer, codec, chirp(SOURCE_RATE))

    code, _ = code_of(data[: len(data) // 2])

    assert code == "audio_unreadable"


def test_empty_upload_is_audio_empty() -> None:
    assert code_of(b"")[0] == "audio_empty"


def test_a_valid_file_without_a_sample_is_audio_empty() -> None:
    assert code_of(silent_wav(16_000, 0))[0] == "audio_empty"


def test_a_video_without_sound_is_unsupported() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=1)
        assert isinstance(stream, av.VideoStream)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame(16, 16, "yuv420p")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    assert code_of(buffer.getvalue())[0] == "audio_unsupported"


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_unsupported(seed: int) -> None:
    noise = np.random.default_rng(seed).bytes(64 * 1024)

    code, elapsed = code_of(noise)

    assert code == "audio_unsupported"
    assert elapsed < 0.1


def test_random_bytes_behind_a_valid_magic_are_unreadable() -> None:
    noise = np.random.default_rng(7).bytes(64 * 1024)

    assert code_of(b"fLaC" + noise)[0] == "audio_unreadable"


def test_a_text_file_is_unsupported() -> None:
    text = ("Minutes of the meeting, 3 December.\n" * 200).encode()

    assert code_of(text)[0] == "audio_unsupported"


def test_eleven_minutes_are_refused_from_the_header_without_decoding() -> None:
    # 11 min at 32 kHz: a valid 21 MB WAV, under the size limit, written at once.
    code, elapsed = code_of(silent_wav(32_000, 660))

    assert code == "audio_too_long"
    # Decoding and resampling the first 10 minutes before refusing takes about 0.25 s.
    assert elapsed < 0.05


def test_a_recording_without_a_duration_is_cut_off_while_decoding() -> None:
    data = make_file("webm", "libopus", chirp(SOURCE_RATE), seekable=False)

    assert code_of(data, DecodeLimits(max_duration_s=2.0))[0] == "audio_too_long"
    assert decode_upload(data, DecodeLimits(max_duration_s=4.0)).duration_s > 2.9


def test_a_30_mb_blob_is_too_large_before_anything_is_read() -> None:
    blob = b"RIFF" + bytes(30 * 1024 * 1024)

    code, elapsed = code_of(blob)

    assert code == "audio_too_large"
    assert elapsed < 0.05


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIO_MAX_UPLOAD_BYTES", "1000")
    monkeypatch.setenv("AUDIO_MAX_DURATION_S", "2")
    limits = DecodeLimits.from_env()
    data = make_file("wav", "pcm_s16le", chirp(8000), rate=8000)

    assert limits == DecodeLimits(max_bytes=1000, max_duration_s=2)
    assert code_of(data, limits)[0] == "audio_too_large"
    assert DecodeLimits() == DecodeLimits(max_bytes=25 * 1024 * 1024, max_duration_s=600)


async def test_async_decode_gives_the_same_audio_and_leaves_the_loop_free() -> None:
    data = make_file("ogg", "libopus", chirp(SOURCE_RATE))
    # 9 min of 32 kHz audio: about a fifth of a second of decoding and resampling.
    long_upload = silent_wav(32_000, 540)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await decode_upload_async(long_upload)
    finally:
        ticker.cancel()

    # A decode run on the loop would not let the ticker run once before it ends.
    assert ticks >= 3
    assert (await decode_upload_async(data)) == decode_upload(data)


# (encoding, requested rate, MIME type, rate a player decodes it at)
OUTPUTS: list[tuple[Encoding, int, str, int]] = [
    ("mp3", 24_000, "audio/mpeg", 24_000),
    ("mp3", 44_100, "audio/mpeg", 44_100),
    ("wav", 22_050, "audio/wav", 22_050),
    ("wav", 48_000, "audio/wav", 48_000),
    ("opus", 24_000, "audio/ogg", 48_000),
    ("opus", 16_000, "audio/ogg", 48_000),
    ("flac", 24_000, "audio/flac", 24_000),
    ("flac", 8_000, "audio/flac", 8_000),
]


@pytest.mark.parametrize(("encoding", "rate", "mime", "played_at"), OUTPUTS)
def test_each_reply_encoding_is_a_whole_file_at_the_requested_rate(
    encoding: Encoding, rate: int, mime: str, played_at: int
) -> None:
    pcm = pcm16(chirp(24_000))

    encoded = encode_pcm(pcm, 24_000, encoding, rate)

    assert encoded.mime_type == mime == mime_type(encoding)
    assert encoded.sample_rate == rate
    with av.open(io.BytesIO(encoded.data), mode="r") as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
    assert frames[0].sample_rate == played_at
    assert frames[0].layout.nb_channels == 1
    decoded_s = sum(frame.samples for frame in frames) / played_at
    assert abs(decoded_s - SECONDS) <= 1152 / rate
    if encoding == "opus":  # the header records the rate the audio was encoded at
        head = encoded.data.index(b"OpusHead")
        assert int.from_bytes(encoded.data[head + 12 : head + 16], "little") == rate
    back = decode_upload(encoded.data)
    # Opus at 32 kbit/s keeps the sound, not every sample's phase: a looser bound.
    floor = 0.85 if encoding == "opus" else 0.9
    assert best_correlation(samples_of(back.pcm), chirp(STT_RATE), int(0.03 * STT_RATE)) > floor


def test_pcm_reply_is_raw_samples_at_the_requested_rate() -> None:
    encoded = encode_pcm(pcm16(chirp(24_000)), 24_000, "pcm", 16_000)

    assert encoded.mime_type == "audio/pcm"
    assert len(encoded.data) == pytest.approx(SECONDS * 16_000 * 2, abs=64)
    assert best_correlation(samples_of(encoded.data), chirp(STT_RATE), 32) > 0.99


@pytest.mark.parametrize("encoding", ["wav", "flac"])
def test_no_audio_is_a_valid_empty_file(encoding: Encoding) -> None:
    data = encode_pcm(b"", 24_000, encoding, 24_000).data

    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.streams.audio[0].sample_rate == 24_000
        assert sum(frame.samples for frame in container.decode(audio=0)) == 0


def test_lossless_encodings_keep_every_sample() -> None:
    pcm = pcm16(chirp(24_000))
    for encoding in ("wav", "flac", "pcm"):
        data = encode_pcm(pcm, 24_000, encoding, 24_000).data
        if encoding != "pcm":
            with av.open(io.BytesIO(data), mode="r") as container:
                data = b"".join(
                    bytes(f.to_ndarray().astype("<i2").tobytes()) for f in container.decode(audio=0)
                )
        assert data == pcm, encoding


@pytest.mark.parametrize(
    ("encoding", "rate", "code"),
    [
        ("opus", 22_050, "audio_rate_unsupported"),
        ("mp3", 96_000, "audio_rate_unsupported"),
        ("wav", 4_000, "audio_rate_unsupported"),
        ("aiff", 24_000, "audio_encoding_unsupported"),
    ],
)
def test_impossible_reply_formats_are_refused(encoding: Any, rate: int, code: str) -> None:
    with pytest.raises(BadInputError) as caught:
        encode_pcm(tone(24_000), 24_000, encoding, rate)

    assert caught.value.code == code
    assert str(rate) in caught.value.message or encoding in caught.value.message


async def test_async_encode_gives_the_same_file() -> None:
    pcm = tone(24_000)

    assert (await encode_pcm_async(pcm, 24_000, "flac", 24_000)) == encode_pcm(
        pcm, 24_000, "flac", 24_000
    )


@pytest.mark.parametrize("speed", [2.0, 1.5, 0.5])
def test_speed_changes_the_duration_and_keeps_the_pitch(speed: float) -> None:
    out = apply_effects(tone(24_000), 24_000, speed=speed)

    duration = len(out) / 2 / 24_000
    assert duration == pytest.approx(SECONDS / speed, rel=0.02)
    assert dominant_hz(out, 24_000) == pytest.approx(440.0, rel=0.02)


@pytest.mark.parametrize("pitch", [2.0, 1.0, -2.0])
def test_pitch_shifts_by_semitones_and_keeps_the_duration(pitch: float) -> None:
    out = apply_effects(tone(24_000), 24_000, pitch=pitch)

    assert len(out) / 2 / 24_000 == pytest.approx(SECONDS, rel=0.02)
    assert dominant_hz(out, 24_000) == pytest.approx(440.0 * 2 ** (pitch / 12), rel=0.01)


@pytest.mark.parametrize(("speed", "pitch"), [(1.25, -1.0), (0.5, 2.0), (2.0, -2.0), (2.0, 2.0)])
def test_speed_and_pitch_together_even_at_the_corners(speed: float, pitch: float) -> None:
    out = apply_effects(tone(16_000), 16_000, speed=speed, pitch=pitch)

    assert len(out) / 2 / 16_000 == pytest.approx(SECONDS / speed, rel=0.02)
    assert dominant_hz(out, 16_000) == pytest.approx(440.0 * 2 ** (pitch / 12), rel=0.01)


def test_neutral_effects_leave_the_audio_alone() -> None:
    pcm = tone(24_000)

    assert apply_effects(pcm, 24_000, speed=1.0, pitch=0.0) is pcm


@pytest.mark.parametrize(("speed", "pitch"), [(2.5, 0.0), (0.4, 0.0), (1.0, 2.5), (1.0, -3.0)])
def test_effects_out_of_range_are_refused(speed: float, pitch: float) -> None:
    with pytest.raises(BadInputError) as caught:
        apply_effects(tone(24_000), 24_000, speed=speed, pitch=pitch)

    assert caught.value.code == "audio_effect_out_of_range"


async def test_async_effects_give_the_same_audio() -> None:
    pcm = tone(24_000)

    assert (await apply_effects_async(pcm, 24_000, speed=2.0)) == apply_effects(
        pcm, 24_000, speed=2.0
    )
