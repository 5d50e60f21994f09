"""The speculative answer on the real bus and database: started on the STT's speculative
transcript, committed by the final that says the same words (stored and counted once), or
dropped when the user goes on (stream closed, TTS and gateway told, nothing stored or
counted, and the next turn answered as usual)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Heard,
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
    SpeculationCancelled,
    TextInput,
    Transcript,
    TurnCommitted,
    UserText,
    interrupt_adapter,
    reply_adapter,
)
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually, session_row
from parley_llm.memory import ConversationMemory
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_llm.session import DialogueSession

CONFIG = SessionConfig(llm_provider=LlmName.SCRIPTED, speculative_answer=True)
LONG_REPLY = " ".join(f"word{i}" for i in range(300))


@dataclass
class Call:
    """One dialogue session and everything it published that the test looks at."""

    session: DialogueSession
    provider: ScriptedLlmProvider
    bus: Bus
    replies: list[tuple[int, Any]] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)  # durable usage/latency events
    seq: int = 0

    async def stt(self, message: Transcript | SpeculationCancelled) -> None:
        """Publish as the STT does (its own message numbers)."""
        self.seq += 1
        channel = (
            SessionChannel.TRANSCRIPT
            if isinstance(message, Transcript)
            else SessionChannel.INTERRUPT
        )
        subject = subjects.session(self.session.sid, channel)
        await self.bus.publish(subject, message, MessageMeta(self.session.sid, seq=self.seq))

    def of(self, kind: type[Any]) -> list[tuple[int, Any]]:
        return [(t, m) for t, m in self.replies if isinstance(m, kind)]


def speculative(text: str) -> Transcript:
    return Transcript(text=text, is_final=False, speculative=True)


def final(text: str) -> Transcript:
    return Transcript(text=text, is_final=True, finalize_ms=3.0)


@pytest.fixture
async def call(bus: Bus, pool: asyncpg.Pool) -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    async def start(provider: ScriptedLlmProvider) -> Call:
        sid = await session_row(pool, CONFIG)
        memory = ConversationMemory(pool, sid, None)
        session = DialogueSession(
            bus, SessionAssign(session_id=sid, user_id="test", config=CONFIG), provider, memory
        )
        running = Call(session, provider, bus)

        async def on_reply(msg: Received) -> None:
            running.replies.append((msg.meta.turn_id, msg.decode(reply_adapter)))

        async def on_interrupt(msg: Received) -> None:
            event = msg.decode(interrupt_adapter)
            if isinstance(event, Interrupt):
                running.interrupts.append(event)

        async def on_event(msg: Received) -> None:
            if sid.encode() in msg.data:
                running.counted.append(msg.subject)

        await bus.subscribe(subjects.session(sid, SessionChannel.REPLY), on_reply)
        await bus.subscribe(subjects.session(sid, SessionChannel.INTERRUPT), on_interrupt)
        for name in ("usage.recorded", "latency.recorded"):
            await bus.subscribe(subjects.event(name), on_event)
        tasks.append(asyncio.create_task(session.run()))
        await asyncio.wait_for(session.ready.wait(), 10)
        return running

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def rows(pool: asyncpg.Pool, sid: str) -> list[tuple[int, str, str]]:
    found = await pool.fetch(
        "SELECT turn_id, role, text FROM voice_transcripts WHERE session_id = $1"
        " ORDER BY turn_id, role DESC",
        sid,
    )
    return [(r["turn_id"], r["role"], r["text"]) for r in found]


async def total_turns(pool: asyncpg.Pool, sid: str) -> int:
    return int(await pool.fetchval("SELECT total_turns FROM voice_sessions WHERE id = $1", sid))


async def test_the_user_going_on_drops_the_speculative_answer_everywhere(
    call: Any, pool: asyncpg.Pool
) -> None:
    running: Call = await call(ScriptedLlmProvider(LONG_REPLY, delta_delay_s=0.02))
    await running.stt(speculative("I'd like to book a table"))
    await eventually(lambda: bool(running.of(ReplyDelta)), 10)
    ((turn, started),) = running.of(UserText)
    assert started.speculative

    await running.stt(SpeculationCancelled())
    await eventually(lambda: bool(running.interrupts), 10)
    assert running.interrupts == [Interrupt(turn_id=turn, reason=InterruptReason.SPECULATION)]
    await eventually(lambda: running.provider.runs[0].cancelled, 10)  # the stream was closed
    assert not running.provider.runs[0].finished
    assert all(t.turn_id != turn for t in running.session.memory.turns)

    # The eventual turn is the whole utterance, answered and stored as usual.
    running.provider.reply = "Done, a table for two."
    await running.stt(final("I'd like to book a table for two"))
    await eventually(lambda: bool(running.of(ReplyDone)), 10)
    await eventually(lambda: running.session.memory.pending_writes == 0, 10)
    await eventually(lambda: len(running.counted) >= 3, 10)  # input, output, latency
    await asyncio.sleep(0.3)  # anything of the dropped turn would have come by now

    ((done_turn, done),) = running.of(ReplyDone)
    assert done_turn != turn
    assert not done.interrupted
    assert not running.of(TurnCommitted)
    assert await rows(pool, running.session.sid) == [
        (done_turn, "user", "I'd like to book a table for two"),
        (done_turn, "assistant", "Done, a table for two."),
    ]
    assert await total_turns(pool, running.session.sid) == 1
    assert [t.text for t in running.session.memory.turns] == [
        "I'd like to book a table for two",
        "Done, a table for two.",
    ]
    assert len(running.counted) == 3  # the dropped run counted nothing


async def test_the_final_commits_the_speculative_answer_stored_and_counted_once(
    call: Any, pool: asyncpg.Pool
) -> None:
    running: Call = await call(ScriptedLlmProvider("Paris is the capital of France."))
    await running.stt(speculative("What is the capital of France?"))
    await eventually(lambda: bool(running.of(ReplyDone)), 10)
    await asyncio.sleep(0.3)
    # Answered in full, but not the user's turn yet: nothing stored, nothing counted.
    assert await rows(pool, running.session.sid) == []
    assert running.counted == []

    await running.stt(final("What is the capital of France?"))
    await eventually(lambda: bool(running.of(TurnCommitted)), 10)
    await eventually(lambda: len(running.counted) >= 3, 10)
    await eventually(lambda: running.session.memory.pending_writes == 0, 10)
    await asyncio.sleep(0.3)

    (turn, _), *others = running.of(UserText)
    assert others == []  # one answer: the final did not start another
    assert len(running.provider.runs) == 1
    assert [t for t, _ in running.of(TurnCommitted)] == [turn]
    assert await rows(pool, running.session.sid) == [
        (turn, "user", "What is the capital of France?"),
        (turn, "assistant", "Paris is the capital of France."),
    ]
    assert await total_turns(pool, running.session.sid) == 1
    assert len(running.counted) == 3


async def test_a_speculative_transcript_withdrawn_before_it_started_is_not_answered(
    call: Any,
) -> None:
    running: Call = await call(ScriptedLlmProvider("Hello."))
    running.seq = 10
    await running.stt(SpeculationCancelled())  # seq 11 overtakes the transcript (seq 5)
    running.seq = 4
    await running.stt(speculative("Hello"))
    await running.stt(final("Hello there"))  # seq 6
    await eventually(lambda: bool(running.of(ReplyDone)), 10)
    await asyncio.sleep(0.2)
    ((_, started),) = running.of(UserText)
    assert not started.speculative
    assert started.text == "Hello there"


async def test_a_speculative_answer_whose_prompt_went_stale_is_made_again(call: Any) -> None:
    running: Call = await call(ScriptedLlmProvider("Once upon a time, a fox."))
    await running.bus.publish(
        subjects.session(running.session.sid, SessionChannel.CONTROL),
        TextInput(text="tell me a story"),
        MessageMeta(running.session.sid),
    )
    await eventually(lambda: bool(running.of(ReplyDone)), 10)
    ((told, _),) = running.of(UserText)
    await running.stt(speculative("and then?"))
    await eventually(lambda: len(running.of(ReplyDone)) == 2, 10)
    # The user heard only "Once" of the story: reported after the answer to them started.
    heard = Heard(turn_id=told, audio_ms=300, chars=4)
    await running.bus.publish(
        subjects.session(running.session.sid, SessionChannel.INTERRUPT),
        heard,
        MessageMeta(running.session.sid, turn_id=told),
    )
    await eventually(lambda: running.session.memory.revision == 1, 10)
    await running.stt(final("and then?"))
    await eventually(lambda: len(running.of(ReplyDone)) == 3, 10)

    assert not running.of(TurnCommitted)
    (_, stale), (_, again) = running.of(UserText)[1:]
    assert stale.speculative
    assert not again.speculative
    assert [e.reason for e in running.interrupts] == [InterruptReason.SPECULATION]
    history = [m.content for m in running.provider.runs[-1].messages if m.role == "assistant"]
    assert history == ["Once"]
