"""Summaries of ended sessions on the real database: the bounded prompt, the parsed answer,
what is stored for a finished, an empty, an active and a failing session, and a summary
written by an emulated cloud model through its SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.summaries import SummaryRequest, SummaryStatus
from parley_common.errors import ProviderFailedError
from parley_common.testing import eventually, session_row
from parley_emulators.base import Fault
from parley_llm import summary as summary_module
from parley_llm.providers.base import ChatMessage, LlmProvider, LlmUsage
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_llm.summary import OMITTED, Summarizer, parse_summary, summary_prompt

if TYPE_CHECKING:
    from tests.conftest import Cloud, Emulate

CONFIG = SessionConfig(llm_provider=LlmName.SCRIPTED, llm_model="summary-model")
TURNS = [
    ("user", "I would like to book a table for four on Friday at eight."),
    ("assistant", "Done: a table for four, Friday at eight, under your name."),
    ("user", "Can we sit on the terrace?"),
    ("assistant", "Yes, I noted a terrace table."),
]
ANSWER = "Title: Friday dinner booking\nSummary: The user booked a terrace table for four."


async def _session(
    pool: asyncpg.Pool,
    turns: Sequence[tuple[str, str]],
    *,
    ended: bool = True,
    config: SessionConfig = CONFIG,
) -> str:
    sid = await session_row(pool, config)
    for index, (role, text) in enumerate(turns):
        await pool.execute(
            "INSERT INTO voice_transcripts (session_id, turn_id, role, text)"
            " VALUES ($1, $2, $3, $4)",
            uuid.UUID(sid),
            index // 2 + 1,
            role,
            text,
        )
    if ended:
        await pool.execute(
            "UPDATE voice_sessions SET status = 'ended', ended_at = now() WHERE id = $1",
            uuid.UUID(sid),
        )
    return sid


async def _row(pool: asyncpg.Pool, sid: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT title, summary, summary_status, summary_generated_at FROM voice_sessions"
        " WHERE id = $1",
        uuid.UUID(sid),
    )
    assert row is not None
    return row


class _Failing:
    """A model whose every call fails, as an adapter reports a provider's outage."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        *,
        model: str | None = None,
        usage: LlmUsage | None = None,
    ) -> AsyncGenerator[str, None]:
        self.calls += 1
        raise ProviderFailedError("the model is down")
        yield ""  # pragma: no cover - makes this an async generator


def _lookup(provider: LlmProvider, asked: list[LlmName] | None = None) -> Any:
    def lookup(name: LlmName) -> LlmProvider:
        if asked is not None:
            asked.append(name)
        return provider

    return lookup


def test_the_prompt_holds_the_conversation_in_order_after_the_instructions() -> None:
    system, user = summary_prompt(TURNS)
    assert system.role == "system"
    assert "Title:" in system.content
    assert user.role == "user"
    lines = user.content.splitlines()[1:]
    assert lines == [f"{'User' if r == 'user' else 'Assistant'}: {t}" for r, t in TURNS]


def test_a_long_conversation_keeps_its_latest_turns_within_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(summary_module, "MAX_TRANSCRIPT_CHARS", 430)
    monkeypatch.setattr(summary_module, "MIN_CUT_CHARS", 20)
    turns = [("user", f"question number {i} " + "x" * 40) for i in range(50)]
    conversation = summary_prompt(turns)[1].content.split("\n", 1)[1]
    assert len(conversation) <= 430 + len(OMITTED) + 1
    assert conversation.startswith(OMITTED)
    assert conversation.endswith("question number 49 " + "x" * 40)
    assert "question number 0 " not in conversation
    # The turn that no longer fits whole keeps its beginning.
    kept = conversation.splitlines()[1]
    assert kept.startswith("User: question number 43")
    assert kept.endswith("…")


def test_the_budget_can_be_smaller_than_the_default() -> None:
    turns = [("user", f"question number {i} " + "x" * 40) for i in range(200)]
    small = summary_prompt(turns, 1_000)[1].content
    assert len(small) < 1_100 < len(summary_prompt(turns)[1].content)
    assert "question number 199" in small


def test_one_overlong_turn_is_cut() -> None:
    content = summary_prompt([("user", "z" * 10_000)])[1].content
    assert "z" * summary_module.MAX_TURN_CHARS in content
    assert "z" * (summary_module.MAX_TURN_CHARS + 1) not in content


@pytest.mark.parametrize(
    ("answer", "title", "text"),
    [
        (ANSWER, "Friday dinner booking", "The user booked a terrace table for four."),
        (
            '**Title:** "Weather in Paris."\n\n**Summary:** Rain all day.\nTake an umbrella.',
            "Weather in Paris",
            "Rain all day. Take an umbrella.",
        ),
        (
            "The user asked about trains to Lyon and got the times. Nothing was booked.",
            "The user asked about trains to Lyon and",
            "The user asked about trains to Lyon and got the times. Nothing was booked.",
        ),
    ],
)
def test_the_answer_gives_a_title_and_a_summary(answer: str, title: str, text: str) -> None:
    parsed = parse_summary(answer)
    assert (parsed.title, parsed.text) == (title, text)


def test_an_empty_answer_is_a_failure() -> None:
    with pytest.raises(ProviderFailedError):
        parse_summary("  \n ")


async def test_an_ended_session_gets_its_summary_from_its_own_model(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, TURNS)
    model = ScriptedLlmProvider(ANSWER)
    asked: list[LlmName] = []
    status = await Summarizer(pool, _lookup(model, asked)).summarize(SummaryRequest(session_id=sid))
    assert status is SummaryStatus.READY
    row = await _row(pool, sid)
    assert row["title"] == "Friday dinner booking"
    assert row["summary"] == "The user booked a terrace table for four."
    assert row["summary_status"] == "ready"
    assert row["summary_generated_at"] is not None
    assert asked == [LlmName.SCRIPTED]
    (run,) = model.runs
    assert run.model == "summary-model"
    prompt = run.messages[-1].content
    for _, text in TURNS:
        assert text in prompt


async def test_the_local_model_gets_a_smaller_prompt(pool: asyncpg.Pool) -> None:
    turns = [("user" if i % 2 == 0 else "assistant", f"turn {i} " + "w" * 200) for i in range(80)]
    sid = await _session(pool, turns, config=SessionConfig(llm_provider=LlmName.LOCAL))
    model = ScriptedLlmProvider(ANSWER)
    asked: list[LlmName] = []
    await Summarizer(pool, _lookup(model, asked)).summarize(SummaryRequest(session_id=sid))
    assert asked == [LlmName.LOCAL]
    prompt = model.runs[0].messages[-1].content
    assert len(prompt) <= summary_module.LOCAL_MAX_TRANSCRIPT_CHARS + 100
    assert "turn 79 " in prompt


async def test_a_summary_on_the_local_model_gives_way_to_live_turns(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, TURNS, config=SessionConfig(llm_provider=LlmName.LOCAL))
    model = ScriptedLlmProvider(ANSWER, delta_delay_s=0.05)
    live = [False]
    summarizer = Summarizer(pool, _lookup(model), busy=lambda: live[0])
    async with asyncio.TaskGroup() as tg:
        summarizing = tg.create_task(summarizer.summarize(SummaryRequest(session_id=sid)))
        await eventually(lambda: bool(model.runs) and model.runs[0].deltas >= 2)
        live[0] = True  # a session of this worker starts answering
        await eventually(lambda: model.runs[0].cancelled, within_s=1)
        await asyncio.sleep(0.3)
        assert len(model.runs) == 1  # nothing starts while the session answers
        live[0] = False
    assert summarizing.result() is SummaryStatus.READY
    assert [r.finished for r in model.runs] == [False, True]
    assert (await _row(pool, sid))["title"] == "Friday dinner booking"


async def test_a_summary_on_another_model_does_not_wait_for_live_turns(
    pool: asyncpg.Pool,
) -> None:
    sid = await _session(pool, TURNS)
    model = ScriptedLlmProvider(ANSWER)
    summarizer = Summarizer(pool, _lookup(model), busy=lambda: True)
    async with asyncio.timeout(5):
        assert await summarizer.summarize(SummaryRequest(session_id=sid)) == "ready"
    assert len(model.runs) == 1


async def test_a_summary_stopped_with_its_worker_is_not_left_pending(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, TURNS)
    model = ScriptedLlmProvider(ANSWER, delta_delay_s=0.5)
    summarizing = asyncio.ensure_future(
        Summarizer(pool, _lookup(model)).summarize(SummaryRequest(session_id=sid))
    )
    await eventually(lambda: bool(model.runs))
    assert (await _row(pool, sid))["summary_status"] == "pending"
    summarizing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await summarizing
    assert model.runs[0].cancelled
    assert (await _row(pool, sid))["summary_status"] == "failed"


async def test_an_empty_session_gets_no_summary_and_no_model_call(pool: asyncpg.Pool) -> None:
    sid = await _session(pool, [])
    model = ScriptedLlmProvider(ANSWER)
    assert await Summarizer(pool, _lookup(model)).summarize(SummaryRequest(session_id=sid)) is None
    row = await _row(pool, sid)
    assert (row["title"], row["summary"], row["summary_status"]) == (None, None, None)
    assert model.runs == []


async def test_an_active_session_is_summarised_only_when_forced(pool: asyncpg.Pool) -> None:
    # A worker that drains releases a session that is moving, not ending.
    sid = await _session(pool, TURNS, ended=False)
    model = ScriptedLlmProvider(ANSWER)
    summarizer = Summarizer(pool, _lookup(model))
    assert await summarizer.summarize(SummaryRequest(session_id=sid)) is None
    assert model.runs == []
    assert await summarizer.summarize(SummaryRequest(session_id=sid, force=True)) == "ready"
    assert (await _row(pool, sid))["title"] == "Friday dinner booking"


async def test_a_failing_model_leaves_the_status_failed_and_the_last_summary(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    sid = await _session(pool, TURNS)
    await Summarizer(pool, _lookup(ScriptedLlmProvider(ANSWER))).summarize(
        SummaryRequest(session_id=sid)
    )
    failing = _Failing()
    with caplog.at_level("WARNING", logger="parley_llm.summary"):
        status = await Summarizer(pool, _lookup(failing)).summarize(SummaryRequest(session_id=sid))
    assert status is SummaryStatus.FAILED
    assert failing.calls == 1
    row = await _row(pool, sid)
    assert row["summary_status"] == "failed"
    assert row["title"] == "Friday dinner booking"  # the earlier summary stays
    assert any(r.getMessage() == "summary failed" for r in caplog.records)


async def test_an_unknown_or_malformed_session_is_ignored(pool: asyncpg.Pool) -> None:
    model = ScriptedLlmProvider(ANSWER)
    summarizer = Summarizer(pool, _lookup(model))
    assert await summarizer.summarize(SummaryRequest(session_id=str(uuid.uuid4()))) is None
    assert await summarizer.summarize(SummaryRequest(session_id="not-a-uuid")) is None
    assert model.runs == []


async def test_every_cloud_model_writes_the_summary_through_its_sdk(
    pool: asyncpg.Pool, cloud: Cloud, emulate: Emulate
) -> None:
    async with emulate(cloud.name, reply=ANSWER) as served:
        sid = await _session(pool, TURNS)
        summarizer = Summarizer(pool, _lookup(served.provider()))
        assert await summarizer.summarize(SummaryRequest(session_id=sid)) is SummaryStatus.READY
        body = served.state.last(cloud.path).body
        sent = json.dumps(body)
        for _, text in TURNS:
            assert text in sent
        assert body["model"] == "summary-model"
        assert (await _row(pool, sid))["title"] == "Friday dinner booking"

        # The provider's outage (no retries) is a failed summary, not a crash.
        served.state.fail_next(Fault(status=cloud.overloaded_status))
        assert await summarizer.summarize(SummaryRequest(session_id=sid)) is SummaryStatus.FAILED
        assert (await _row(pool, sid))["summary_status"] == "failed"
