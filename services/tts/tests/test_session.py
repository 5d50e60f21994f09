"""The TTS session on the real bus: audio never waits for JetStream, durable facts still go
out, and state stays bounded over a long call."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
)
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually
from parley_tts.providers.scripted import ScriptedTtsProvider
from parley_tts.session import RECENT_TURNS, TtsSession

CONFIG = SessionConfig(tts_provider=TtsName.SCRIPTED)


class SlowAcks(Bus):
    """The real bus, with a JetStream that takes half a second to ack (a busy or remote
    stream server)."""

    ACK_DELAY_S = 0.5

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus.nc)
        self.durable: list[str] = []

    async def js_publish(
        self, subject: str, payload: Any, meta: MessageMeta, *, msg_id: str | None = None
    ) -> Any:
        await asyncio.sleep(self.ACK_DELAY_S)
        self.durable.append(subject)
        return await super().js_publish(subject, payload, meta, msg_id=msg_id)


@pytest.fixture
async def slow_bus(bus: Bus) -> SlowAcks:
    return SlowAcks(bus)


@pytest.fixture
async def session(slow_bus: SlowAcks) -> AsyncIterator[TtsSession]:
    assign = SessionAssign(session_id="tts-session-test", user_id="test", config=CONFIG)
    tts = TtsSession(slow_bus, assign, ScriptedTtsProvider(ms_per_char=20))
    task = asyncio.create_task(tts.run())
    await asyncio.wait_for(tts.ready.wait(), 10)
    yield tts
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def publish(bus: Bus, tts: TtsSession, channel: SessionChannel, msg: Any, turn: int) -> None:
    await bus.publish(subjects.session(tts.sid, channel), msg, MessageMeta(tts.sid, turn_id=turn))


async def test_audio_does_not_wait_for_durable_acks(
    session: TtsSession, slow_bus: SlowAcks
) -> None:
    arrivals: list[tuple[float, AudioOutMeta]] = []

    async def on_audio(msg: Received) -> None:
        arrivals.append((time.perf_counter(), AudioOutMeta.parse(msg.meta.extra)))

    await slow_bus.subscribe(subjects.session(session.sid, SessionChannel.AUDIO_OUT), on_audio)
    text = "This sentence is long enough to be spoken in several chunks of audio."
    await publish(slow_bus, session, SessionChannel.REPLY, ReplyDelta(text=text), 1)
    await publish(slow_bus, session, SessionChannel.REPLY, ReplyDone(text=text), 1)
    await eventually(lambda: any(meta.end for _, meta in arrivals), 10)

    times = [at for at, meta in arrivals if not meta.end]
    assert len(times) >= 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # With the ack awaited on the audio path, the chunk after the first waited ~0.5 s.
    assert max(gaps) < SlowAcks.ACK_DELAY_S / 2
    # The durable facts still went out, from the reporter's own task.
    await eventually(
        lambda: (
            {subjects.event("latency.recorded"), subjects.event("usage.recorded")}
            <= set(slow_bus.durable)
        ),
        5,
    )


async def test_five_hundred_turns_keep_the_session_state_bounded(
    session: TtsSession, slow_bus: SlowAcks
) -> None:
    ends: set[int] = set()

    async def on_audio(msg: Received) -> None:
        if AudioOutMeta.parse(msg.meta.extra).end:
            ends.add(msg.meta.turn_id)

    await slow_bus.subscribe(subjects.session(session.sid, SessionChannel.AUDIO_OUT), on_audio)
    slow_bus.ACK_DELAY_S = 0.0
    for turn in range(1, 501):
        if turn % 3 == 0:  # interrupted (its reply may still be on its way)
            interrupt = Interrupt(turn_id=turn, reason=InterruptReason.BARGE_IN)
            await publish(slow_bus, session, SessionChannel.INTERRUPT, interrupt, turn)
        await publish(slow_bus, session, SessionChannel.REPLY, ReplyDelta(text="Ok."), turn)
        await publish(slow_bus, session, SessionChannel.REPLY, ReplyDone(text="Ok."), turn)
        if turn % 50 == 0:
            await eventually(lambda t=turn: t - 1 in ends or t in ends, 10)
        assert session.tracked_turns <= 2 * RECENT_TURNS
    await eventually(lambda: 500 in ends, 10)
    assert session.tracked_turns <= 2 * RECENT_TURNS
    assert {t for t in range(1, 501) if t % 3} <= ends, "every turn not interrupted is spoken"
