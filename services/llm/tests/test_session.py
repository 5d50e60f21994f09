"""The dialogue session on the real bus and database: one answer at a time, interrupts that
never wait on PostgreSQL, memory as heard, and bounded state however long the call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

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
    ServiceError,
    SessionAssign,
    TextInput,
    Transcript,
    TurnCommitted,
    UserText,
    reply_adapter,
    status_adapter,
)
from parley_common.contracts.events import ProviderSwitched, UsageRecorded
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.subjects import SessionChannel
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_common.testing import eventually, session_row
from parley_emulators import openai_chat
from parley_emulators.base import EmulatorState, Fault, running
from parley_llm import memory as memory_module
from parley_llm import session as session_module
from parley_llm.memory import CONTEXT_MESSAGES, RECENT_TURNS, ConversationMemory
from parley_llm.providers.base import LlmProvider
from parley_llm.providers.openai_chat import OPENAI, OpenAIChatProvider
from parley_llm.providers.scripted import DEFAULT_REPLY, ScriptedLlmProvider
from parley_llm.session import DialogueSession

CONFIG = SessionConfig(llm_provider=LlmName.SCRIPTED)
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


@dataclass
class Replies:
    """Everything published on a session's reply subject, in order, with arrival times."""

    items: list[tuple[int, ReplyDelta | ReplyDone | UserText | TurnCommitted, float]] = field(
        default_factory=list
    )

    async def on_message(self, msg: Received) -> None:
        self.items.append((msg.meta.turn_id, msg.decode(reply_adapter), time.perf_counter()))

    def of(self, kind: type[Any], turn_id: int | None = None) -> list[Any]:
        return [
            (t, m, at)
            for t, m, at in self.items
            if isinstance(m, kind) and (turn_id is None or t == turn_id)
        ]

    def done(self, turn_id: int) -> ReplyDone | None:
        found = self.of(ReplyDone, turn_id)
        return cast(ReplyDone, found[0][1]) if found else None


@dataclass
class Running:
    session: DialogueSession
    replies: Replies
    bus: Bus

    async def publish(self, channel: SessionChannel, message: Any, turn_id: int = 0) -> None:
        subject = subjects.session(self.session.sid, channel)
        await self.bus.publish(subject, message, MessageMeta(self.session.sid, turn_id=turn_id))


@pytest.fixture
async def run_session(bus: Bus, pool: asyncpg.Pool) -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    async def start(
        provider: LlmProvider,
        db: Any = None,
        config: SessionConfig = CONFIG,
        fallbacks: tuple[str, ...] = (),
    ) -> Running:
        sid = await session_row(pool, config)
        memory = ConversationMemory(db if db is not None else pool, sid, None)
        assign = SessionAssign(session_id=sid, user_id="test", config=config)
        session = DialogueSession(bus, assign, provider, memory, fallbacks)
        replies = Replies()
        await bus.subscribe(subjects.session(sid, SessionChannel.REPLY), replies.on_message)
        tasks.append(asyncio.create_task(session.run()))
        await asyncio.wait_for(session.ready.wait(), 10)
        return Running(session, replies, bus)

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class InterruptionWritesFail:
    """A pool whose interruption counter cannot be written (a lock, a failover, a full
    disk): everything else goes to the real database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.failed = 0

    async def fetch(self, *args: Any) -> Any:
        return await self.pool.fetch(*args)

    async def fetchval(self, *args: Any) -> Any:
        return await self.pool.fetchval(*args)

    async def execute(self, sql: str, *args: Any) -> Any:
        if "interruptions_count" in sql:
            self.failed += 1
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return await self.pool.execute(sql, *args)


async def test_an_interrupt_stops_the_answer_even_when_its_write_fails(
    run_session: Any, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "WRITE_RETRY_DELAY_S", 0.0)
    db = InterruptionWritesFail(pool)
    running = await run_session(ScriptedLlmProvider(LONG_REPLY, delta_delay_s=0.02), db)
    await running.publish(SessionChannel.CONTROL, TextInput(text="tell me a long story"))
    await eventually(lambda: bool(running.replies.of(ReplyDelta)))
    turn_id = running.replies.of(ReplyDelta)[0][0]

    sent_at = time.perf_counter()
    interrupt = Interrupt(turn_id=turn_id, reason=InterruptReason.BARGE_IN)
    await running.publish(SessionChannel.INTERRUPT, interrupt, turn_id)
    await eventually(lambda: running.replies.done(turn_id) is not None, 5)

    late = [at for _, _, at in running.replies.of(ReplyDelta, turn_id) if at > sent_at]
    assert len(late) <= 1  # at most the delta already on its way
    done = running.replies.done(turn_id)
    assert done is not None
    assert done.interrupted
    await eventually(lambda: db.failed >= memory_module.WRITE_RETRIES, 5)


async def test_a_transcript_and_a_typed_message_together_yield_one_live_answer(
    run_session: Any,
) -> None:
    running = await run_session(ScriptedLlmProvider(LONG_REPLY[:300], delta_delay_s=0.005))
    final = Transcript(text="what time is it", is_final=True, confidence=0.9)
    await asyncio.gather(
        running.publish(SessionChannel.TRANSCRIPT, final),
        running.publish(SessionChannel.CONTROL, TextInput(text="and the weather?")),
    )
    await eventually(lambda: len(running.replies.of(ReplyDone)) == 2, 10)

    turns = [t for t, _, _ in running.replies.of(UserText)]
    assert len(turns) == 2
    live = [t for t in turns if not cast(ReplyDone, running.replies.done(t)).interrupted]
    assert len(live) == 1, "exactly one answer streams to the end"
    (cut,) = set(turns) - set(live)
    first_live_delta = min(at for _, _, at in running.replies.of(ReplyDelta, live[0]))
    cut_deltas = [at for _, _, at in running.replies.of(ReplyDelta, cut)]
    # The superseded answer never streams alongside the live one.
    assert all(at < first_live_delta for at in cut_deltas)


async def test_memory_keeps_what_was_heard_and_a_new_worker_continues(
    run_session: Any, pool: asyncpg.Pool
) -> None:
    running = await run_session(ScriptedLlmProvider("One two three four five six."))
    await running.publish(SessionChannel.CONTROL, TextInput(text="count"))
    await eventually(lambda: running.replies.done(1) is not None)
    await running.publish(SessionChannel.INTERRUPT, Heard(turn_id=1, audio_ms=500, chars=7), 1)
    memory = running.session.memory
    await eventually(lambda: memory.pending_writes == 0)
    await eventually(lambda: memory.turns[-1].text == "One two")

    rows = await pool.fetch(
        "SELECT role, text, interrupted FROM voice_transcripts WHERE session_id = $1"
        " ORDER BY turn_id, role DESC",
        memory.session_id,
    )
    assert [tuple(r) for r in rows] == [("user", "count", False), ("assistant", "One two", True)]
    again = ConversationMemory(pool, str(memory.session_id), None)
    await again.load()
    assert again.last_turn_id == 1
    assert [t.text for t in again.turns] == ["count", "One two"]


async def test_five_hundred_turns_keep_the_session_state_bounded(
    run_session: Any, pool: asyncpg.Pool
) -> None:
    running = await run_session(ScriptedLlmProvider("Sure, noted."))
    memory = running.session.memory
    for turn_id in range(1, 501):
        await running.publish(SessionChannel.CONTROL, TextInput(text=f"note {turn_id}"))
        await eventually(lambda t=turn_id: running.replies.done(t) is not None, 10)
        if turn_id % 2:
            await running.publish(
                SessionChannel.INTERRUPT,
                Interrupt(turn_id=turn_id, reason=InterruptReason.BARGE_IN),
                turn_id,
            )
            heard = Heard(turn_id=turn_id, audio_ms=100, chars=4)
            await running.publish(SessionChannel.INTERRUPT, heard, turn_id)
        assert len(memory.turns) <= CONTEXT_MESSAGES
        assert memory.tracked_turns <= 2 * (RECENT_TURNS + 1)
    await eventually(lambda: memory.pending_writes == 0, 30)
    stored = await pool.fetchval(
        "SELECT count(*) FROM voice_transcripts WHERE session_id = $1", memory.session_id
    )
    assert stored == 1000  # nothing of the call is lost while memory stays bounded
    totals = await pool.fetchrow(
        "SELECT total_turns, interruptions_count FROM voice_sessions WHERE id = $1",
        memory.session_id,
    )
    assert totals is not None
    assert tuple(totals) == (500, 250)


async def test_token_usage_of_each_answer_is_recorded_durably(run_session: Any, bus: Bus) -> None:
    usage: list[UsageRecorded] = []

    async def on_usage(msg: Received) -> None:
        usage.append(UsageRecorded.model_validate_json(msg.data))

    await bus.subscribe(subjects.event("usage.recorded"), on_usage)
    running = await run_session(ScriptedLlmProvider("Three words here."))
    await running.publish(SessionChannel.CONTROL, TextInput(text="say three words"))
    await eventually(lambda: len([u for u in usage if u.session_id == running.session.sid]) == 2)

    mine = {u.unit: u for u in usage if u.session_id == running.session.sid}
    assert mine["output_tokens"].quantity == 3
    assert mine["input_tokens"].quantity > 0
    assert {u.service for u in mine.values()} == {"llm"}
    assert {u.provider for u in mine.values()} == {"scripted"}


@pytest.fixture
async def failing_openai() -> AsyncIterator[tuple[EmulatorState, OpenAIChatProvider]]:
    state = EmulatorState(api_key="sk-test")
    async with running(openai_chat.app(state)) as url:
        provider = OpenAIChatProvider(
            name="openai",
            vendor=OPENAI,
            api_key="sk-test",
            base_url=f"{url}/v1",
            model="gpt-test",
            timeout_s=5.0,
            max_retries=0,
        )
        yield state, provider
        await provider.aclose()


async def test_a_failing_provider_hands_the_turn_to_the_fallback(
    run_session: Any,
    bus: Bus,
    failing_openai: tuple[EmulatorState, OpenAIChatProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    state, primary = failing_openai
    state.fail_next(Fault(status=503, body={"error": {"message": "overloaded", "type": "x"}}))
    switched: list[ProviderSwitched] = []

    async def on_switch(msg: Received) -> None:
        switched.append(ProviderSwitched.model_validate_json(msg.data))

    await bus.subscribe(subjects.event("provider.switched"), on_switch)
    config = SessionConfig(llm_provider=LlmName.OPENAI)
    running_ = await run_session(primary, config=config, fallbacks=("scripted",))
    await running_.publish(SessionChannel.CONTROL, TextInput(text="hello?"))
    await eventually(lambda: running_.replies.done(1) is not None, 10)

    done = running_.replies.done(1)
    assert done is not None
    assert (done.interrupted, done.finish_reason) == (False, "stop")
    assert done.text == DEFAULT_REPLY  # the scripted fallback answered the whole turn
    await eventually(lambda: bool(switched), 5)
    assert (switched[0].provider, switched[0].fallback) == ("openai", "scripted")
    assert switched[0].reason == "provider_failed"


async def test_a_provider_late_to_its_first_token_is_replaced(
    run_session: Any,
    failing_openai: tuple[EmulatorState, OpenAIChatProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    # Long enough for the request to reach the emulator on a loaded machine (CI saw 0.3 s
    # pass before it was sent), far shorter than the emulator's first event.
    monkeypatch.setattr(session_module, "FIRST_TOKEN_DEADLINE_S", 1.5)
    state, primary = failing_openai
    state.stream_delay_s = 5.0  # the emulator takes 5 s per event
    config = SessionConfig(llm_provider=LlmName.OPENAI)
    running_ = await run_session(primary, config=config, fallbacks=("scripted",))
    await running_.publish(SessionChannel.CONTROL, TextInput(text="hello?"))
    await eventually(lambda: running_.replies.done(1) is not None, 10)

    done = running_.replies.done(1)
    assert done is not None
    assert done.text == DEFAULT_REPLY
    # The slow provider's stream was closed, not left running.
    await eventually(lambda: state.last("/chat/completions").closed_at is not None, 3)


class HangsOnce:
    """A provider whose first answer says ``words`` and then never another (a hung
    connection); every later answer is the scripted reply."""

    name = "hangs"

    def __init__(self, words: tuple[str, ...] = ()) -> None:
        self.words = words
        self.calls = 0
        self.closed = asyncio.Event()  # the hung stream was closed, not left waiting
        self.scripted = ScriptedLlmProvider()

    async def stream(self, messages: Any, max_tokens: int, **options: Any) -> AsyncIterator[str]:
        self.calls += 1
        if self.calls > 1:
            async for delta in self.scripted.stream(messages, max_tokens, **options):
                yield delta
            return
        try:
            for word in self.words:
                yield word
            await asyncio.Event().wait()
        finally:
            self.closed.set()


@pytest.mark.parametrize(("words", "deadline"), [((), "ANSWER"), (("Well,",), "STALL")])
async def test_a_hung_provider_ends_the_turn_with_an_error_and_the_next_is_answered(
    run_session: Any,
    bus: Bus,
    monkeypatch: pytest.MonkeyPatch,
    words: tuple[str, ...],
    deadline: str,
) -> None:
    monkeypatch.setattr(session_module, f"{deadline}_DEADLINE_S", 0.5)
    provider = HangsOnce(words)
    running_ = await run_session(cast(LlmProvider, provider))
    errors: list[ServiceError] = []

    async def on_status(msg: Received) -> None:
        event = msg.decode(status_adapter)
        if isinstance(event, ServiceError):
            errors.append(event)

    sid = running_.session.sid
    await bus.subscribe(subjects.session(sid, SessionChannel.STATUS), on_status)
    await running_.publish(SessionChannel.CONTROL, TextInput(text="hello?"))
    await eventually(lambda: running_.replies.done(1) is not None, 5)

    done = running_.replies.done(1)
    assert done is not None
    assert (done.finish_reason, done.text) == ("error", "".join(words))
    await asyncio.wait_for(provider.closed.wait(), 2)
    await eventually(lambda: bool(errors), 2)
    assert (errors[0].service, errors[0].code) == ("llm", "timeout")
    assert "stopped answering" in errors[0].message

    await running_.publish(SessionChannel.CONTROL, TextInput(text="are you there?"))
    await eventually(lambda: running_.replies.done(2) is not None, 5)
    answered = running_.replies.done(2)
    assert answered is not None
    assert (answered.finish_reason, answered.text) == ("stop", DEFAULT_REPLY)
