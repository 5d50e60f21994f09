"""A speculative turn on the TTS: spoken at once, its latency and usage reported only once it
commits; dropped (interrupt, reason speculation), it stops and reports nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    TurnCommitted,
    TurnLatency,
    UserText,
    status_adapter,
)
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually
from parley_tts.providers.scripted import ScriptedTtsProvider
from parley_tts.session import TtsSession


@dataclass
class Out:
    """What the session published: audio chunks (turn, end) and reports (subject, turn)."""

    audio: list[tuple[int, bool]] = field(default_factory=list)
    reports: list[tuple[str, int]] = field(default_factory=list)

    async def on_audio(self, msg: Received) -> None:
        self.audio.append((msg.meta.turn_id, AudioOutMeta.parse(msg.meta.extra).end))

    async def on_status(self, msg: Received) -> None:
        if isinstance(msg.decode(status_adapter), TurnLatency):
            self.reports.append(("status", msg.meta.turn_id))

    def on_event(self, sid: str) -> Any:
        async def record(msg: Received) -> None:
            if sid.encode() in msg.data:
                self.reports.append((msg.subject.rsplit(".", 1)[-1], msg.meta.turn_id))

        return record


@pytest.fixture
async def tts(bus: Bus, request: pytest.FixtureRequest) -> AsyncIterator[tuple[TtsSession, Out]]:
    sid = f"tts-speculation-{request.node.name}"
    config = SessionConfig(tts_provider=TtsName.SCRIPTED)
    session = TtsSession(
        bus, SessionAssign(session_id=sid, user_id="t", config=config), ScriptedTtsProvider()
    )
    out = Out()
    await bus.subscribe(subjects.session(sid, SessionChannel.AUDIO_OUT), out.on_audio)
    await bus.subscribe(subjects.session(sid, SessionChannel.STATUS), out.on_status)
    for name in ("latency.recorded", "usage.recorded"):
        await bus.subscribe(subjects.event(name), out.on_event(sid))
    task = asyncio.create_task(session.run())
    await asyncio.wait_for(session.ready.wait(), 10)
    yield session, out
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def send(bus: Bus, session: TtsSession, channel: SessionChannel, msg: Any) -> None:
    meta = MessageMeta(session.sid, turn_id=1)
    await bus.publish(subjects.session(session.sid, channel), msg, meta)


async def test_a_speculative_turn_is_spoken_at_once_and_counted_once_it_commits(
    bus: Bus, tts: tuple[TtsSession, Out]
) -> None:
    session, out = tts
    await send(
        bus, session, SessionChannel.REPLY, UserText(text="hi", typed=False, speculative=True)
    )
    await send(bus, session, SessionChannel.REPLY, ReplyDelta(text="Hello there."))
    await send(bus, session, SessionChannel.REPLY, ReplyDone(text="Hello there."))
    await eventually(lambda: (1, True) in out.audio, 10)  # spoken to its end
    await asyncio.sleep(0.3)
    assert out.reports == []  # not the user's turn yet: nothing counted

    await send(bus, session, SessionChannel.REPLY, TurnCommitted())
    await eventually(lambda: len(out.reports) == 3, 10)
    assert sorted(out.reports) == [
        ("recorded", 1),  # latency.recorded and usage.recorded end alike
        ("recorded", 1),
        ("status", 1),
    ]


async def test_a_dropped_speculative_turn_stops_and_reports_nothing(
    bus: Bus, tts: tuple[TtsSession, Out]
) -> None:
    session, out = tts
    await send(
        bus, session, SessionChannel.REPLY, UserText(text="hi", typed=False, speculative=True)
    )
    await send(bus, session, SessionChannel.REPLY, ReplyDelta(text="One. " * 200))
    await eventually(lambda: bool(out.audio), 10)
    cut = Interrupt(turn_id=1, reason=InterruptReason.SPECULATION)
    await send(bus, session, SessionChannel.INTERRUPT, cut)
    await asyncio.sleep(0.3)
    chunks = len(out.audio)
    await send(bus, session, SessionChannel.REPLY, ReplyDone(text="One. " * 200))
    await asyncio.sleep(0.5)
    assert len(out.audio) == chunks  # stopped
    assert (1, True) not in out.audio
    assert out.reports == []
    assert not session.busy()
