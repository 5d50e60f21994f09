"""A TTS session whose provider takes text as it is written (ElevenLabs' stream-input
socket, Deepgram Aura's socket), against their emulators on the real bus: the answer's
deltas go out as they arrive, audio comes back with spans into the reply text, and an
interrupt clears the provider and closes the connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
    UserText,
)
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually
from parley_emulators import deepgram_speak, elevenlabs
from parley_emulators.base import EmulatorState, running
from parley_tts.providers.deepgram_aura import DeepgramAuraProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider
from parley_tts.session import TtsSession


@dataclass(frozen=True)
class Case:
    name: TtsName
    state: Callable[[], EmulatorState]
    app: Callable[[Any], Starlette]
    build: Callable[[str], ElevenLabsProvider | DeepgramAuraProvider]
    path: str


CASES = [
    Case(
        TtsName.ELEVENLABS,
        elevenlabs.ElevenLabsState,
        elevenlabs.app,
        lambda url: ElevenLabsProvider(SecretStr("test-key"), base_url=url, timeout_s=5.0),
        "/stream-input",
    ),
    Case(
        TtsName.DEEPGRAM,
        EmulatorState,
        deepgram_speak.app,
        lambda url: DeepgramAuraProvider(SecretStr("test-key"), base_url=url, timeout_s=5.0),
        "/v1/speak",
    ),
]


@dataclass
class Call:
    session: TtsSession
    state: EmulatorState
    bus: Bus
    audio: list[tuple[int, AudioOutMeta, int]] = field(default_factory=list)

    async def on_audio(self, msg: Received) -> None:
        self.audio.append((msg.meta.turn_id, AudioOutMeta.parse(msg.meta.extra), len(msg.data)))

    async def say(self, channel: SessionChannel, message: Any, turn: int) -> None:
        subject = subjects.session(self.session.sid, channel)
        await self.bus.publish(subject, message, MessageMeta(self.session.sid, turn_id=turn))

    def ended(self, turn: int) -> bool:
        return any(t == turn and meta.end for t, meta, _ in self.audio)


@pytest.fixture(params=CASES, ids=[case.name.value for case in CASES])
async def call(request: pytest.FixtureRequest, bus: Bus) -> AsyncIterator[Call]:
    case: Case = request.param
    state = case.state()
    async with running(case.app(state)) as url:
        provider = case.build(url)
        config = SessionConfig(tts_provider=case.name)
        assign = SessionAssign(session_id=f"tts-streamed-{case.name}", user_id="t", config=config)
        session = TtsSession(bus, assign, provider)
        assert session.streaming
        task = asyncio.create_task(session.run())
        await asyncio.wait_for(session.ready.wait(), 10)
        call = Call(session, state, bus)
        await bus.subscribe(subjects.session(session.sid, SessionChannel.AUDIO_OUT), call.on_audio)
        yield call
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await provider.aclose()


REPLY = ["Sure. ", "The weather", " today is ", "sunny and warm."]


async def test_the_answer_streams_in_as_written_and_audio_spans_the_reply(call: Call) -> None:
    await call.say(SessionChannel.REPLY, UserText(text="weather?", typed=True), 1)
    # The provider is connected while the model is still thinking, before any answer text.
    await eventually(lambda: any(r.method == "WEBSOCKET" for r in call.state.requests), 5)
    for delta in REPLY:
        await call.say(SessionChannel.REPLY, ReplyDelta(text=delta), 1)
    await call.say(SessionChannel.REPLY, ReplyDone(text="".join(REPLY)), 1)
    await eventually(lambda: call.ended(1), 10)

    chunks = [(meta, size) for t, meta, size in call.audio if t == 1 and not meta.end]
    assert sum(size for _, size in chunks) > 0
    assert all(meta.rate == call.session.rate for meta, _ in chunks)
    reply = "".join(REPLY)
    assert max(meta.text_end for meta, _ in chunks) == len(reply)
    assert all(0 <= meta.text_start <= meta.text_end <= len(reply) for meta, _ in chunks)


async def test_an_interrupt_clears_the_provider_and_closes_its_stream(call: Call) -> None:
    call.state.stream_delay_s = 0.05
    await call.say(SessionChannel.REPLY, ReplyDelta(text="word " * 60 + "end. "), 2)
    await eventually(lambda: any(t == 2 for t, _, _ in call.audio), 10)
    await call.say(
        SessionChannel.INTERRUPT, Interrupt(turn_id=2, reason=InterruptReason.BARGE_IN), 2
    )

    recorded = call.state.last("speak" if call.session.provider.name == "deepgram" else "stream")
    await eventually(lambda: recorded.closed_at is not None, 2)
    if call.session.provider.name == "deepgram":
        assert {"type": "Clear"} in recorded.messages
    heard = len(call.audio)
    await asyncio.sleep(0.3)
    assert len(call.audio) == heard, "nothing of the interrupted turn is published after"
    assert not call.ended(2)
