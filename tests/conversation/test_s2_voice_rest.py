"""S2's ``POST /api/v1/voice/tts`` and ``POST /api/v1/voice/stt`` against a gateway whose
STT and TTS workers answer through the job protocol: every encoding, speed and pitch, the
upload formats, uploads over NATS' 1 MB message limit, and refusals that leave it serving.
The scripted doubles give exact expectations; Piper and Whisper one realistic case each."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from typing import Any

import av
import httpx
import numpy as np
import pytest

from bench.audio import INPUT_RATE, spoken, word_error_rate
from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.jobs import TTS_SYNTHESIZE
from parley_common.testing import eventually

TTS = "/api/v1/voice/tts"
STT = "/api/v1/voice/stt"
TEXT = "The quick brown fox jumps over the lazy sleeping dog"  # 52 characters
TONE_HZ = 440.0  # the scripted TTS's tone


def _scripted_seconds(text: str) -> float:
    ms_per_char = float(os.environ.get("PARLEY_SCRIPTED_TTS_MS_PER_CHAR", "60"))
    return len(text.strip()) * ms_per_char / 1000


def _decoded(data: bytes) -> tuple[np.ndarray, int]:
    """Every sample of an audio file (mono int16) and the rate it decodes at, via PyAV."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        parts = [
            frame.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            if frame.samples > 0
        ]
    samples = np.concatenate(parts) if parts else np.zeros(0)
    if samples.dtype.kind == "f":
        samples = samples * 32767
    return samples.astype(np.float64), rate


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def _container(pcm: bytes, muxer: str, codec: str, rate: int = INPUT_RATE) -> bytes:
    """PCM16 at ``rate`` as a file of ``muxer``/``codec``, the way a client would record it."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _wav(pcm: bytes) -> bytes:
    return _container(pcm, "wav", "pcm_s16le")


async def _tts(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(TTS, json={"text": TEXT, "provider": "scripted", **body})


async def _stt(
    client: httpx.AsyncClient, data: bytes, name: str = "speech.wav", **form: str
) -> httpx.Response:
    files = {"audio_file": (name, data, "application/octet-stream")}
    return await client.post(STT, files=files, data={"provider": "scripted", **form})


@pytest.mark.parametrize(
    ("encoding", "rate", "content_type"),
    [
        ("mp3", 24000, "audio/mpeg"),
        ("wav", 22050, "audio/wav"),
        ("opus", 48000, "audio/ogg"),
        ("flac", 16000, "audio/flac"),
        ("pcm", 24000, "audio/pcm"),
    ],
)
async def test_tts_in_every_encoding_decodes_to_the_text_length(
    platform_url: str, encoding: str, rate: int, content_type: str
) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        reply = await _tts(client, encoding=encoding, sample_rate=rate)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == content_type
    assert reply.headers["x-audio-sample-rate"] == str(rate)
    if encoding == "pcm":
        samples, decoded_rate = np.frombuffer(reply.content, dtype="<i2"), rate
    else:
        samples, decoded_rate = _decoded(reply.content)
    assert decoded_rate == rate
    # MP3 and Opus add up to a few tens of milliseconds of encoder delay.
    assert len(samples) / rate == pytest.approx(_scripted_seconds(TEXT), abs=0.08)
    assert _peak_hz(samples, rate) == pytest.approx(TONE_HZ, rel=0.01)


async def test_tts_speed_shortens_and_pitch_raises_the_tone(platform_url: str) -> None:
    seconds = _scripted_seconds(TEXT)
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        fast = await _tts(client, encoding="wav", speed=2.0)
        slow = await _tts(client, encoding="wav", speed=0.5)
        high = await _tts(client, encoding="wav", pitch=2.0)
        low = await _tts(client, encoding="wav", pitch=-2.0, speed=1.5)
    for reply in (fast, slow, high, low):
        assert reply.status_code == 200, reply.text
    fast_samples, rate = _decoded(fast.content)
    assert len(fast_samples) / rate == pytest.approx(seconds / 2, abs=0.03)
    assert _peak_hz(fast_samples, rate) == pytest.approx(TONE_HZ, rel=0.01)
    slow_samples, _ = _decoded(slow.content)
    assert len(slow_samples) / rate == pytest.approx(seconds * 2, abs=0.03)
    # Semitones, keeping the duration: +2 is 2 ** (2/12) = 1.122 times the frequency.
    high_samples, _ = _decoded(high.content)
    assert len(high_samples) / rate == pytest.approx(seconds, abs=0.05)
    assert _peak_hz(high_samples, rate) == pytest.approx(TONE_HZ * 2 ** (2 / 12), rel=0.01)
    low_samples, _ = _decoded(low.content)
    assert len(low_samples) / rate == pytest.approx(seconds / 1.5, abs=0.05)
    assert _peak_hz(low_samples, rate) == pytest.approx(TONE_HZ * 2 ** (-2 / 12), rel=0.01)


async def test_tts_refusals_are_clear_4xx(
    platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        too_fast = await _tts(client, speed=3.0)
        boolean = await _tts(client, pitch=False)
        bad_rate = await _tts(client, encoding="opus", sample_rate=44100)
        bad_voice = await _tts(client, voice="aura-asteria-en")
        no_key = await client.post(TTS, json={"text": TEXT, "provider": "elevenlabs"})
        empty = await _tts(client, text="")
        still = await _tts(client, encoding="wav")
    assert too_fast.status_code == 422
    assert too_fast.json()["error"]["code"] == "validation_error"
    assert boolean.status_code == 422
    assert bad_rate.status_code == 422
    assert bad_rate.json()["error"]["code"] == "audio_rate_unsupported"
    assert bad_voice.status_code == 422
    assert "aura-asteria-en" in bad_voice.json()["error"]["message"]
    # Raised in the TTS worker, raised again in the gateway as the same class.
    assert no_key.status_code == 422
    assert no_key.json()["error"]["code"] == "provider_unavailable"
    assert "ELEVENLABS_API_KEY" in no_key.json()["error"]["message"]
    assert empty.status_code == 422
    assert still.status_code == 200


async def test_tts_with_piper_speaks_and_its_speed_is_the_voices_own(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=120) as client:
        normal = await client.post(TTS, json={"text": TEXT, "encoding": "mp3"})
        fast = await client.post(TTS, json={"text": TEXT, "encoding": "wav", "speed": 2.0})
    assert normal.status_code == 200, normal.text
    assert normal.headers["content-type"] == "audio/mpeg"
    normal_samples, rate = _decoded(normal.content)
    assert rate == 24000
    normal_s = len(normal_samples) / rate
    assert 1.5 < normal_s < 6.0  # ten words of speech
    assert np.sqrt(np.mean(normal_samples**2)) > 300  # not silence
    fast_samples, fast_rate = _decoded(fast.content)
    # Piper halves its phoneme lengths; its pauses and its random duration noise do not
    # scale, so twice as fast is well under, not exactly, half the length.
    assert len(fast_samples) / fast_rate < 0.75 * normal_s


async def test_stt_of_a_wav_and_a_webm_returns_the_script_line_and_duration(
    platform_url: str,
) -> None:
    pcm = spoken("Please book a table for two")
    seconds = len(pcm) / 2 / INPUT_RATE
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        wav = await _stt(client, _wav(pcm), language="en")
        webm = await _stt(client, _container(pcm, "webm", "libopus"), name="blob.webm")
    assert wav.status_code == 200, wav.text
    body = wav.json()
    assert set(body) == {"text", "confidence", "language", "duration", "words"}
    assert body["text"] == os.environ.get("PARLEY_SCRIPTED_STT_TEXT", "hello there")
    assert body["language"] == "en"
    assert body["duration"] == pytest.approx(seconds, abs=0.01)
    assert webm.status_code == 200, webm.text
    assert webm.json()["duration"] == pytest.approx(seconds, abs=0.1)


async def test_stt_of_a_minute_crosses_the_bus_in_chunks(platform_url: str) -> None:
    # 60 s of PCM16 16 kHz is 1.92 MB: twice NATS' default max_payload.
    t = np.arange(60 * INPUT_RATE) / INPUT_RATE
    pcm = (3000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        reply = await _stt(client, _wav(pcm))
    assert reply.status_code == 200, reply.text
    assert reply.json()["duration"] == pytest.approx(60.0, abs=0.01)


async def test_stt_with_whisper_hears_a_webm_recording(platform_url: str) -> None:
    said = "Please book a table for two people tomorrow evening"
    webm = _container(spoken(said), "webm", "libopus")
    async with httpx.AsyncClient(base_url=platform_url, timeout=180) as client:
        files = {"audio_file": ("blob.webm", webm, "audio/webm")}
        reply = await client.post(STT, files=files, data={"language": "en"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert word_error_rate(said, body["text"]) < 0.3, body["text"]
    assert body["language"] == "en"
    assert body["words"]
    assert all(w["end"] >= w["start"] for w in body["words"])


async def test_bad_uploads_get_documented_4xx_and_the_service_keeps_serving(
    platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    good = _wav(spoken("hello"))
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
        empty = await _stt(client, b"")
        noise = await _stt(client, rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
        text = await _stt(client, b"just some notes, not audio\n" * 100, name="notes.mp3")
        cut = await _stt(
            client, _container(spoken("hello there"), "flac", "flac")[:3000], name="cut.flac"
        )
        missing = await client.post(STT, data={"provider": "scripted"})
        klingon = await _stt(client, good, language="tlh")
        monkeypatch.setenv("AUDIO_MAX_UPLOAD_BYTES", "1000")
        large = await _stt(client, good)
        monkeypatch.delenv("AUDIO_MAX_UPLOAD_BYTES")
        still = await _stt(client, good)
    codes = {
        "empty": (empty.status_code, empty.json()["error"]["code"]),
        "noise": (noise.status_code, noise.json()["error"]["code"]),
        "text": (text.status_code, text.json()["error"]["code"]),
        "cut": (cut.status_code, cut.json()["error"]["code"]),
        "large": (large.status_code, large.json()["error"]["code"]),
    }
    assert codes == {
        "empty": (422, "audio_empty"),
        "noise": (415, "audio_unsupported"),
        "text": (415, "audio_unsupported"),
        "cut": (422, "audio_unreadable"),
        "large": (413, "audio_too_large"),
    }
    assert missing.status_code == 422
    assert klingon.status_code == 422, klingon.text  # not one of the nine
    assert "tlh" in klingon.text
    assert still.status_code == 200


async def test_the_issues_bad_uploads_each_get_a_clear_4xx(platform_url: str) -> None:
    pcm = spoken("hello there")
    webm = _container(pcm, "webm", "libopus")
    # Eleven minutes of 8 kHz silence: 10.6 MB, under the body limit, over the length limit.
    eleven_minutes = _container(bytes(11 * 60 * 8000 * 2), "wav", "pcm_s16le", 8000)
    rng = np.random.default_rng(11)
    async with httpx.AsyncClient(base_url=platform_url, timeout=120) as client:
        answers = {
            "wav named .mp3": await _stt(client, _wav(pcm), name="question.mp3"),
            "wav sent as audio/mpeg": await client.post(
                STT,
                files={"audio_file": ("question", _wav(pcm), "audio/mpeg")},
                data={"provider": "scripted"},
            ),
            "truncated webm": await _stt(client, webm[: len(webm) // 3], name="blob.webm"),
            "0 bytes": await _stt(client, b""),
            "random bytes": await _stt(
                client, rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes(), name="x.bin"
            ),
            "11 minutes": await _stt(client, eleven_minutes),
            "30 MB": await _stt(client, bytes(30 * 1024 * 1024), name="big.wav"),
        }
        still = await _stt(client, _wav(pcm), name="question.wav")
    seen = {name: (r.status_code, r.json()["error"]["code"]) for name, r in answers.items()}
    assert seen == {
        "wav named .mp3": (415, "audio_mislabelled"),
        "wav sent as audio/mpeg": (415, "audio_mislabelled"),
        "truncated webm": (422, "audio_unreadable"),
        "0 bytes": (422, "audio_empty"),
        "random bytes": (415, "audio_unsupported"),
        "11 minutes": (422, "audio_too_long"),
        "30 MB": (413, "payload_too_large"),
    }
    for response in answers.values():
        assert response.json()["error"]["message"]
    assert still.status_code == 200, still.text


async def test_a_client_that_leaves_stops_its_synthesis(
    platform_url: str, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    # Piper speaking 4,400 characters takes ten seconds or more here; the client leaves once
    # a worker has been offered the job.
    caplog.set_level(logging.INFO, logger="parley_common.jobs")
    offered = asyncio.Event()

    async def on_offer(_: Received) -> None:
        offered.set()

    # A plain subscription sees the offers the queue group's worker takes.
    watch = await bus.subscribe(subjects.job("tts", TTS_SYNTHESIZE), on_offer)
    text = " ".join(["This sentence is spoken by the local voice."] * 100)
    try:
        async with httpx.AsyncClient(base_url=platform_url, timeout=120) as http:
            request = asyncio.create_task(
                http.post(TTS, json={"text": text, "provider": "local", "encoding": "wav"})
            )
            await asyncio.wait_for(offered.wait(), 30)
            await asyncio.sleep(1.0)  # the worker answered the offer and is speaking
            request.cancel()  # the connection closes: the client has left
            with pytest.raises(asyncio.CancelledError):
                await request
    finally:
        await watch.unsubscribe()

    async def cancelled() -> bool:
        return any(r.getMessage() == "job cancelled by its requester" for r in caplog.records)

    await eventually(cancelled, 30)
    async with httpx.AsyncClient(base_url=platform_url, timeout=60) as http:
        again = await http.post(TTS, json={"text": "Still here.", "provider": "local"})
        assert again.status_code == 200
