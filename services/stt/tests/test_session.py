"""The STT session on the real bus: the gateway's audio clock is the session's clock (a new
worker continues it, push-to-talk padding does not drift it), one turn is at most
MAX_TURN_MS long, and the VAD model never loads on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import INPUT_SAMPLE_RATE, AudioInMeta, PushToTalk
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    ServiceError,
    SessionAssign,
    SpeechStarted,
    SpeechStopped,
    Transcript,
    speech_adapter,
    status_adapter,
    transcript_adapter,
)
from parley_common.contracts.events import ProviderSwitched
from parley_common.contracts.session import InterruptSensitivity, SessionConfig
from parley_common.contracts.session import SttProvider as SttName
from parley_common.contracts.subjects import SessionChannel
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_common.runtime import Runtime
from parley_common.settings import ServiceSettings
from parley_common.testing import eventually
from parley_emulators.base import Fault, running
from parley_emulators.deepgram_listen import ListenState
from parley_emulators.deepgram_listen import app as listen_app
from parley_emulators.openai_transcribe import app as transcribe_app
from parley_emulators.spoken import SttEmulatorState
from parley_stt import session as session_module
from parley_stt import vad as vad_module
from parley_stt.providers.deepgram_live import DeepgramLiveProvider
from parley_stt.providers.openai_stt import OpenAiSttProvider
from parley_stt.providers.scripted import ScriptedSttProvider
from parley_stt.session import SttSession, open_session
from parley_stt.settings import CloudSttSettings
from parley_stt.vad import SileroVad

CONFIG = SessionConfig(
    stt_provider=SttName.SCRIPTED, interrupt_sensitivity=InterruptSensitivity.HIGH
)
FRAME = 640  # 20 ms of PCM16 at 16 kHz, as clients send it


@dataclass
class Heard:
    speech: list[SpeechStarted | SpeechStopped] = field(default_factory=list)
    finals: list[Transcript] = field(default_factory=list)
    errors: list[ServiceError] = field(default_factory=list)

    async def on_speech(self, msg: Received) -> None:
        self.speech.append(msg.decode(speech_adapter))

    async def on_transcript(self, msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        if transcript.is_final:
            self.finals.append(transcript)

    async def on_status(self, msg: Received) -> None:
        event = msg.decode(status_adapter)
        if isinstance(event, ServiceError):
            self.errors.append(event)

    def started(self) -> list[int]:
        return [e.at_ms for e in self.speech if isinstance(e, SpeechStarted)]


@dataclass
class Gateway:
    """Publishes audio the way the gateway does: each message says where it starts."""

    bus: Bus
    sid: str
    sample: int = 0

    async def audio(self, pcm: bytes, frame: int = FRAME) -> None:
        for i in range(0, len(pcm), frame):
            chunk = pcm[i : i + frame]
            await self._publish(chunk, AudioInMeta(self.sample))
            self.sample += len(chunk) // 2

    async def push_to_talk(self, action: PushToTalk) -> None:
        await self._publish(b"", AudioInMeta(self.sample, action))

    async def _publish(self, data: bytes, audio: AudioInMeta) -> None:
        subject = subjects.session(self.sid, SessionChannel.AUDIO_IN)
        await self.bus.publish(subject, data, MessageMeta(self.sid, extra=audio.headers()))


@pytest.fixture
async def start(bus: Bus) -> AsyncIterator[Callable[[str], Any]]:
    tasks: list[asyncio.Task[None]] = []

    async def run(sid: str) -> tuple[SttSession, Heard, Gateway]:
        assign = SessionAssign(session_id=sid, user_id="test", config=CONFIG)
        stt = SttSession(bus, assign, ScriptedSttProvider(["hello there"]), SileroVad())
        heard = Heard()
        for channel, handler in (
            (SessionChannel.SPEECH, heard.on_speech),
            (SessionChannel.TRANSCRIPT, heard.on_transcript),
            (SessionChannel.STATUS, heard.on_status),
        ):
            await bus.subscribe(subjects.session(sid, channel), handler)
        tasks.append(asyncio.create_task(stt.run()))
        await asyncio.wait_for(stt.ready.wait(), 10)
        return stt, heard, Gateway(bus, sid)

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def ms(samples: int) -> int:
    return samples * 1000 // INPUT_SAMPLE_RATE


async def test_a_new_worker_continues_the_gateway_clock(start: Any, say: Any) -> None:
    _, heard, gateway = await start("stt-failover-clock")
    gateway.sample = 10 * INPUT_SAMPLE_RATE  # the session ran 10 s on another worker
    speech = say("Hello there, how are you today?")
    await gateway.audio(bytes(FRAME * 15) + speech + bytes(FRAME * 50))
    await eventually(lambda: bool(heard.finals), 10)

    (onset,) = heard.started()[:1]
    assert 10_000 + 250 <= onset <= 10_000 + 300 + 400  # within the speech, on the 10 s clock
    stopped = next(e for e in heard.speech if isinstance(e, SpeechStopped))
    assert stopped.at_ms <= ms(gateway.sample)


async def test_push_to_talk_padding_does_not_drift_the_clock(start: Any) -> None:
    _, heard, gateway = await start("stt-ptt-clock")
    await gateway.push_to_talk("start")
    await gateway.audio(bytes(FRAME) * 16 + bytes(FRAME // 2))  # 330 ms: a partial VAD frame
    await gateway.push_to_talk("stop")
    await eventually(lambda: bool(heard.finals), 10)
    await gateway.audio(bytes(FRAME * 25))  # 500 ms of silence
    await gateway.push_to_talk("start")
    await eventually(lambda: len(heard.started()) == 2, 10)

    assert heard.started() == [0, ms(gateway.sample)] == [0, 830]
    stopped = [e for e in heard.speech if isinstance(e, SpeechStopped)]
    assert stopped[0].at_ms == 330


async def test_a_turn_longer_than_the_limit_is_ended_answered_and_told(
    start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "MAX_TURN_MS", 3_000)
    _, heard, gateway = await start("stt-long-turn")
    await gateway.push_to_talk("start")  # held down: only the limit can end this turn
    await gateway.audio(bytes(FRAME * 200))  # 4 s
    await eventually(lambda: bool(heard.finals), 10)

    assert heard.finals[0].text == "hello there"
    assert 2_900 <= heard.finals[0].audio_ms <= 3_100
    (warning,) = heard.errors
    assert (warning.code, warning.severity) == ("turn_limit_reached", "warning")
    assert "3 s" in warning.message


async def test_the_vad_model_loads_off_the_event_loop(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded_in: list[threading.Thread] = []
    real_load = vad_module._shared_session

    def load() -> Any:
        loaded_in.append(threading.current_thread())
        return real_load()

    monkeypatch.setattr(vad_module, "_shared_session", load)
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    settings = ServiceSettings(database_url=SecretStr("postgresql://unused"))
    runtime = Runtime("stt", "stt-test", settings, bus, None, asyncio.Event())
    assign = SessionAssign(session_id="stt-vad-load", user_id="test", config=CONFIG)

    await open_session(runtime)(assign)

    assert loaded_in
    assert threading.main_thread() not in loaded_in


async def test_a_streaming_provider_pushes_partials_and_gets_the_session_model(bus: Bus) -> None:
    state = ListenState(api_key="dg-key", transcript="Hello there, how are you today?")
    async with running(listen_app(state)) as url:
        settings = CloudSttSettings.model_validate({"stt_finalize_timeout_s": 2.0})
        provider = DeepgramLiveProvider(SecretStr("dg-key"), url, settings)
        config = CONFIG.model_copy(
            update={"stt_provider": SttName.DEEPGRAM, "stt_model": "nova-2-phonecall"}
        )
        assign = SessionAssign(session_id="stt-pushed", user_id="test", config=config)
        stt = SttSession(bus, assign, provider, SileroVad())
        partials: list[Transcript] = []

        async def on_transcript(msg: Received) -> None:
            partials.append(msg.decode(transcript_adapter))

        await bus.subscribe(subjects.session(stt.sid, SessionChannel.TRANSCRIPT), on_transcript)
        task = asyncio.create_task(stt.run())
        await asyncio.wait_for(stt.ready.wait(), 10)
        gateway = Gateway(bus, stt.sid)
        await gateway.push_to_talk("start")
        for _ in range(40):  # 2 s, paced so the provider answers as the audio arrives
            await gateway.audio(bytes(FRAME * 2), frame=FRAME * 2)
            await asyncio.sleep(0.02)
        await eventually(lambda: any(not t.is_final for t in partials), 5)
        await gateway.push_to_talk("stop")
        await eventually(lambda: any(t.is_final for t in partials), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    socket = state.last("/v1/listen")
    assert socket.query["model"] == "nova-2-phonecall"
    final = next(t for t in partials if t.is_final)
    assert final.text.startswith("Hello there")
    assert next(t.text for t in partials if not t.is_final) in final.text


async def test_a_failing_provider_hands_the_turn_to_the_fallback(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    state = SttEmulatorState(api_key="sk-test", transcript="never heard")
    state.fail_next(*[Fault(status=503, body={"error": {"message": "down", "type": "x"}})] * 3)
    switched: list[ProviderSwitched] = []

    async def on_switch(msg: Received) -> None:
        switched.append(ProviderSwitched.model_validate_json(msg.data))

    await bus.subscribe(subjects.event("provider.switched"), on_switch)
    async with running(transcribe_app(state)) as url:
        settings = CloudSttSettings.model_validate({"stt_cloud_retries": 0})
        primary = OpenAiSttProvider("whisper", SecretStr("sk-test"), f"{url}/v1", settings)
        config = CONFIG.model_copy(update={"stt_provider": SttName.WHISPER})
        assign = SessionAssign(session_id="stt-fallback", user_id="test", config=config)
        stt = SttSession(bus, assign, primary, SileroVad(), fallbacks=["scripted"])
        heard = Heard()
        await bus.subscribe(
            subjects.session(stt.sid, SessionChannel.TRANSCRIPT), heard.on_transcript
        )
        task = asyncio.create_task(stt.run())
        await asyncio.wait_for(stt.ready.wait(), 10)
        gateway = Gateway(bus, stt.sid)
        await gateway.push_to_talk("start")
        await gateway.audio(bytes(FRAME * 50))
        await gateway.push_to_talk("stop")
        await eventually(lambda: bool(heard.finals), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await primary.aclose()

    assert heard.finals[0].text == "hello there"  # the scripted fallback's line
    assert state.last("/audio/transcriptions")  # the primary was asked first
    await eventually(lambda: bool(switched), 5)
    assert (switched[0].service, switched[0].provider, switched[0].fallback) == (
        "stt",
        "whisper",
        "scripted",
    )
