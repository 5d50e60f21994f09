"""The session's speaking rate reaches the provider: the same answer at speed 2.0 is half
as long as at 1.0."""

from __future__ import annotations

import asyncio

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import ReplyDelta, ReplyDone, SessionAssign
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually
from parley_tts.providers.scripted import ScriptedTtsProvider
from parley_tts.session import TtsSession

TEXT = "A sentence spoken at two different speeds."


async def spoken_bytes(bus: Bus, speed: float) -> int:
    sid = f"tts-speed-{speed}"
    config = SessionConfig(tts_provider=TtsName.SCRIPTED, speed=speed)
    session = TtsSession(
        bus,
        SessionAssign(session_id=sid, user_id="t", config=config),
        ScriptedTtsProvider(ms_per_char=20),
    )
    total, ended = 0, asyncio.Event()

    async def on_audio(msg: Received) -> None:
        nonlocal total
        total += len(msg.data)
        if AudioOutMeta.parse(msg.meta.extra).end:
            ended.set()

    await bus.subscribe(subjects.session(sid, SessionChannel.AUDIO_OUT), on_audio)
    task = asyncio.create_task(session.run())
    await asyncio.wait_for(session.ready.wait(), 10)
    reply = subjects.session(sid, SessionChannel.REPLY)
    await bus.publish(reply, ReplyDelta(text=TEXT), MessageMeta(sid, turn_id=1))
    await bus.publish(reply, ReplyDone(text=TEXT), MessageMeta(sid, turn_id=1))
    await eventually(ended.is_set, 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return total


async def test_speed_is_passed_to_the_provider(bus: Bus) -> None:
    normal, fast = await spoken_bytes(bus, 1.0), await spoken_bytes(bus, 2.0)
    assert abs(fast * 2 - normal) <= 0.02 * normal
