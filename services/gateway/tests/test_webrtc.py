"""WebRTC calls through a real gateway (in-process workers with the scripted doubles) with an
aiortc client, ``bench.webrtc_call``: a spoken question answered with audio on the track,
the data channel's events equal to the WebSocket's for the same turn, barge-in and the
client's interrupt cutting the track, a newer connection replacing the call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets

from bench.audio import silence, speak
from bench.call import Call, CallLog
from bench.webrtc_call import WebRtcCall, comparable_events
from parley_common.contracts.ws import CLOSE_REPLACED
from parley_llm.providers.scripted import ScriptedLlmProvider

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
QUESTION = "What is the weather like in Paris today?"
LONG_REPLY = " ".join(
    f"Sentence number {i} of a long answer that keeps the assistant talking." for i in range(30)
)
DECODED_RATE = 48_000  # aiortc decodes Opus at 48 kHz, two channels interleaved
TONE_HZ = 440  # the scripted TTS speaks a sine tone


@pytest.fixture
async def question() -> bytes:
    return await speak(QUESTION)


@contextlib.asynccontextmanager
async def _webrtc(url: str, **config: Any) -> AsyncIterator[WebRtcCall]:
    call = await WebRtcCall.start(url, **{**SCRIPTED, **config})
    try:
        yield call
    finally:
        await call.close()


def _dominant_hz(pcm: bytes) -> float:
    stereo = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    mono = stereo.reshape(-1, 2).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    return float(np.fft.rfftfreq(mono.size, 1 / DECODED_RATE)[int(spectrum.argmax())])


async def test_offer_is_answered_with_opus_and_every_candidate(platform_url: str) -> None:
    async with _webrtc(platform_url) as call:
        answer = call.pc.remoteDescription.sdp
        assert "opus/48000" in answer.lower()
        assert "a=candidate:" in answer  # gathered before answering: nothing trickles
        assert "m=application" in answer
        assert call.pc.connectionState == "connected"
        ready = call.events("ready")[0]["data"]
        assert ready["session_id"] == call.session_id
        assert ready["output_sample_rate"] == 24000
        await call.send_json({"type": "ping", "ts": 12.5})
        pong = await call.wait_for("pong")
        assert pong["data"]["ts"] == 12.5


async def test_spoken_question_is_answered_with_audio_on_the_track(
    platform_url: str, question: bytes
) -> None:
    async with _webrtc(platform_url, interrupt_sensitivity="high") as call:
        await call.say(question + silence(700))
        await call.wait_for("speech_started")
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"])
        assert final["data"]["text"] == "hello there"  # the scripted STT's line
        start = await call.wait_for("audio_start")
        done = await call.wait_for("response", lambda e: e["data"]["done"])
        await call.wait_for("audio_end", within_s=30)
        await asyncio.sleep(0.6)  # the end of the audio is still on its way
        turn = start["data"]["turn_id"]
        audio = call.audio(turn)
        # The scripted voice speaks 60 ms per character (sentence by sentence, spaces
        # between sentences unspoken); each decoded frame is 20 ms.
        spoken_ms = 60 * len(done["data"]["text"].replace(". ", "."))
        assert abs(len(audio) * 20 - spoken_ms) < 400, (len(audio), spoken_ms)
        assert abs(_dominant_hz(b"".join(r.audio or b"" for r in audio)) - TONE_HZ) < 5
        # Between turns the track carries silence, not noise.
        quiet = [h for h in call.heard if h.at > call.arrival(start) - 0.5][:5]
        assert quiet
        assert max(h.peak for h in quiet) < 200


def _milestones(log: CallLog) -> list[str]:
    kinds = ("ready", "speech_started", "speech_stopped", "transcription_complete", "audio_end")
    return [e["type"] for e in log.events() if e["type"] in kinds]


async def test_data_channel_events_equal_the_websockets(platform_url: str, question: bytes) -> None:
    spoken = question + silence(700)
    async with _webrtc(platform_url, interrupt_sensitivity="high") as rtc:
        await rtc.say(spoken)
        await rtc.wait_for("audio_end", within_s=30)
    ws = await Call.start(platform_url, interrupt_sensitivity="high", **SCRIPTED)
    try:
        await ws.say(spoken)
        await ws.wait_for("audio_end", within_s=30)
    finally:
        await ws.close()
    over_rtc = comparable_events(rtc.events())
    assert {"ready", "transcript", "response", "audio_start", "audio_end"} <= set(over_rtc)
    assert over_rtc == comparable_events(ws.events())
    assert (
        _milestones(rtc)
        == _milestones(ws)
        == [
            "ready",
            "speech_started",
            "speech_stopped",
            "transcription_complete",
            "audio_end",
        ]
    )
    # The VAD hears the same speech at the same place (Opus and resampling add a few ms).
    for kind in ("speech_started", "speech_stopped"):
        at = [c.events(kind)[0]["data"]["at_ms"] for c in (rtc, ws)]
        assert abs(at[0] - at[1]) < 120, (kind, at)


async def test_barge_in_cuts_the_audio_on_the_track(
    platform_url: str, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    async with _webrtc(platform_url, interrupt_sensitivity="medium") as call:
        await call.send_json({"type": "text_message", "text": "tell me a long story"})
        start = await call.wait_for("audio_start")
        old_turn = start["data"]["turn_id"]
        await asyncio.sleep(1.0)  # the assistant is talking
        assert len(call.audio(old_turn)) > 20
        scripted_llm.reply = "Short answer."
        await call.say(question + silence(1200))  # medium: the turn ends after 1 s
        interrupted = await call.wait_for("interrupted", within_s=10)
        assert interrupted["data"]["turn_id"] == old_turn
        heard = interrupted["data"]["heard_text"]
        assert heard
        assert LONG_REPLY.startswith(heard)
        assert len(heard) < len(LONG_REPLY) / 2
        cut_at = call.arrival(interrupted)
        new_start = await call.wait_for("audio_start", lambda e: e["data"]["turn_id"] > old_turn)
        # The track went quiet at the cut (its unread audio dropped on the gateway), within
        # the browser-side jitter of a frame or a few, until the new answer began.
        between = [h for h in call.audible_after(cut_at + 0.15) if h.at < call.arrival(new_start)]
        assert between == []
        done = await call.wait_for(
            "response", lambda e: e["data"]["done"] and e["data"]["turn_id"] > old_turn
        )
        assert done["data"]["text"] == "Short answer."
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == done["data"]["turn_id"])


async def test_the_interrupt_message_silences_the_track(
    platform_url: str, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    async with _webrtc(platform_url, interrupt_sensitivity="low") as call:
        await call.send_json({"type": "text_message", "text": "talk to me"})
        start = await call.wait_for("audio_start")
        await asyncio.sleep(0.8)
        await call.send_json({"type": "interrupt"})
        interrupted = await call.wait_for("interrupted")
        assert interrupted["data"]["turn_id"] == start["data"]["turn_id"]
        cut_at = call.arrival(interrupted)
        await asyncio.sleep(1.0)
        assert call.audible_after(cut_at + 0.15) == []


async def test_a_websocket_of_the_same_session_replaces_the_call(platform_url: str) -> None:
    async with _webrtc(platform_url) as call:
        url = platform_url.replace("http://", "ws://") + f"/api/v1/sessions/{call.session_id}/ws"
        async with websockets.connect(url) as ws:
            assert '"ready"' in str(await ws.recv())
            closed = await call.wait_closed()
            assert closed.code == CLOSE_REPLACED
            assert "replaced" in closed.reason
