"""Tool calls in a dialogue session on the real bus and database, the model an emulator of
Anthropic's or OpenAI's wire protocol reached through Parley's adapter: the chatbot's
webhook is called with the model's (validated) arguments, its result goes back to the model
and the answer streams; a barge-in during a slow tool cancels the call; a slow, failing or
refused call gives the model an error result and the turn still ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    ReplyDelta,
    ReplyDone,
    SessionAssign,
    TextInput,
    reply_adapter,
)
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SessionConfig
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import session_row
from parley_common.tool_hosts import HOSTS_ENV
from parley_emulators import anthropic_messages, openai_chat, webhook
from parley_emulators.base import EmulatorState, running, starlette_app
from parley_emulators.dialogue import ToolPlan
from parley_llm.memory import ConversationMemory
from parley_llm.providers.anthropic_messages import AnthropicProvider
from parley_llm.providers.base import LlmProvider
from parley_llm.providers.openai_chat import OPENAI, OpenAIChatProvider
from parley_llm.session import DialogueSession
from parley_llm.tools import FILLER

KEY = "sk-test-emulator-key-0123456789"
SECRET = "s3cret-webhook-token-42"
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"}},
    "required": ["order_id"],
    "additionalProperties": False,
}
RESULT = {"order_id": "A-17", "status": "shipped", "eta": "Thursday"}
PREFIX = "Here is what I found: "


@dataclass
class Replies:
    """The session's reply subject: deltas and the end of each turn."""

    deltas: list[str] = field(default_factory=list)
    done: list[ReplyDone] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Received) -> None:
        reply = msg.decode(reply_adapter)
        if isinstance(reply, ReplyDelta):
            self.deltas.append(reply.text)
        elif isinstance(reply, ReplyDone):
            self.done.append(reply)
            self.ended.set()


@dataclass
class Model:
    """An emulated cloud model and the adapter pointed at it."""

    name: str
    state: EmulatorState
    provider: LlmProvider
    path: str

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.state.last(self.path).body
        return body


@contextlib.asynccontextmanager
async def _model(name: str, plan: ToolPlan) -> AsyncIterator[Model]:
    state = EmulatorState(api_key=KEY)
    if name == "anthropic":
        routes = anthropic_messages.routes(state, tool_plan=plan)
    else:
        routes = openai_chat.routes(state, tool_plan=plan)
    async with running(starlette_app(routes)) as url:
        provider: AnthropicProvider | OpenAIChatProvider
        if name == "anthropic":
            provider = AnthropicProvider(
                api_key=KEY, base_url=url, model="claude-test", timeout_s=10, max_retries=0
            )
            path = anthropic_messages.MESSAGES_PATH
        else:
            provider = OpenAIChatProvider(
                name="openai",
                vendor=OPENAI,
                api_key=KEY,
                base_url=f"{url}/v1",
                model="gpt-test",
                timeout_s=10,
                max_retries=0,
            )
            path = openai_chat.OPENAI_PATH
        try:
            yield Model(name, state, provider, path)
        finally:
            await provider.aclose()


@pytest.fixture
async def hook(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[webhook.WebhookState, str]]:
    """The chatbot's webhook on 127.0.0.1, the only allowed host."""
    monkeypatch.setenv(HOSTS_ENV, "127.0.0.1")
    state = webhook.WebhookState(result=RESULT)
    async with running(webhook.app(state)) as url:
        yield state, url + webhook.TOOL_PATH


Start = Callable[..., Any]


@pytest.fixture
async def converse(bus: Bus, pool: asyncpg.Pool) -> AsyncIterator[Start]:
    """``converse(provider, url, timeout_s=5)``: a session of a chatbot whose one tool is
    ``lookup_order`` at ``url``; returns (session id, replies, send) once it listens."""
    tasks: list[asyncio.Task[None]] = []

    async def start(provider: LlmProvider, url: str, timeout_s: float = 5.0) -> Any:
        chatbot = f"tools-{uuid.uuid4().hex[:8]}"
        await pool.execute(
            """INSERT INTO chatbot_tools (id, chatbot_id, user_id, name, kind, description,
                   parameters, url, timeout_s, secret_header, secret_value)
               VALUES ($1, $2, 'test', 'lookup_order', 'webhook', 'Look an order up.',
                   $3, $4, $5, 'x-api-key', $6)""",
            uuid.uuid4(),
            chatbot,
            ORDER_SCHEMA,
            url,
            timeout_s,
            SECRET,
        )
        config = SessionConfig(llm_provider=LlmName.ANTHROPIC)
        sid = await session_row(pool, config)
        await pool.execute(
            "UPDATE voice_sessions SET chatbot_id = $2 WHERE id = $1", uuid.UUID(sid), chatbot
        )
        memory = ConversationMemory(pool, sid, None)
        session = DialogueSession(
            bus, SessionAssign(session_id=sid, user_id="test", config=config), provider, memory
        )
        replies = Replies()
        await bus.subscribe(subjects.session(sid, SessionChannel.REPLY), replies.on_message)
        tasks.append(asyncio.create_task(session.run()))
        await asyncio.wait_for(session.ready.wait(), 10)

        async def send(channel: SessionChannel, message: Any, turn_id: int = 0) -> None:
            meta = MessageMeta(sid, turn_id=turn_id)
            await bus.publish(subjects.session(sid, channel), message, meta)

        await send(SessionChannel.CONTROL, TextInput(text="Where is my order A-17?"))
        return sid, replies, send

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _calls(pool: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    for _ in range(100):
        rows = await pool.fetch(
            "SELECT * FROM voice_tool_calls WHERE session_id = $1", uuid.UUID(sid)
        )
        if rows:
            return rows
        await asyncio.sleep(0.05)
    return []


def _tool_results(model: Model) -> list[tuple[str, bool]]:
    """The tool results the model received last (text, is_error)."""
    last = model.last_body()["messages"][-1]
    if model.name == "anthropic":
        return [(b["content"], bool(b.get("is_error"))) for b in last["content"]]
    return [(last["content"], False)] if last["role"] == "tool" else []


@pytest.mark.parametrize("vendor", ["anthropic", "openai"])
async def test_the_webhook_is_called_and_its_result_is_the_answer(
    vendor: str,
    hook: tuple[webhook.WebhookState, str],
    converse: Start,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    state, url = hook
    plan = ToolPlan("lookup_order", {"order_id": "A-17"}, answer_prefix=PREFIX)
    async with _model(vendor, plan) as model:
        sid, replies, _ = await converse(model.provider, url)
        await asyncio.wait_for(replies.ended.wait(), 15)

        # The webhook got the model's arguments and the secret header.
        called = state.last(webhook.TOOL_PATH)
        assert called.body == {"order_id": "A-17"}
        assert called.headers["x-api-key"] == SECRET
        # The model was offered the tool, never told its URL or secret...
        first = model.state.requests[0].body
        assert "lookup_order" in json.dumps(first["tools"])
        assert SECRET not in json.dumps(first)
        assert url not in json.dumps(first)
        # ...and got its result back, then answered with it.
        assert len(model.state.requests) == 2
        [(result, is_error)] = _tool_results(model)
        assert json.loads(result) == RESULT
        assert not is_error
        done = replies.done[0]
        assert not done.interrupted
        assert done.finish_reason == "stop"
        assert done.text.startswith(PREFIX.strip())
        assert json.loads(done.text.removeprefix(PREFIX.strip())) == RESULT
        assert FILLER.strip() not in done.text  # the tool was quick: no filler

    [row] = await _calls(pool, sid)
    assert (row["name"], row["status"], row["arguments"]) == (
        "lookup_order",
        "ok",
        {"order_id": "A-17"},
    )
    assert json.loads(row["result"]) == RESULT
    assert SECRET not in json.dumps(dict(row), default=str)
    assert SECRET not in caplog.text, "the secret is never logged"


async def test_a_barge_in_during_a_slow_tool_cancels_the_call(
    hook: tuple[webhook.WebhookState, str], converse: Start
) -> None:
    state, url = hook
    state.delay_s = 30.0
    plan = ToolPlan("lookup_order", {"order_id": "A-17"})
    async with _model("anthropic", plan) as model:
        _, replies, send = await converse(model.provider, url, timeout_s=25)
        # The tool is slow: the filler is spoken so the line is not silent.
        for _ in range(100):
            if replies.deltas:
                break
            await asyncio.sleep(0.05)
        assert replies.deltas == [FILLER]
        assert state.requests
        assert state.requests[0].closed_at is None

        cut = time.perf_counter()
        await send(SessionChannel.INTERRUPT, Interrupt(turn_id=1, reason=InterruptReason.BARGE_IN))
        await asyncio.wait_for(replies.ended.wait(), 5)
        await asyncio.wait_for(state.closed.wait(), 5)

        assert replies.done[0].interrupted
        closed_at = state.requests[0].closed_at
        assert closed_at is not None, "the webhook call was aborted"
        assert closed_at - cut < 1.0
        assert len(model.state.requests) == 1, "the model never got a result to go on with"


async def test_a_tool_that_times_out_gives_the_model_an_error_and_the_turn_ends(
    hook: tuple[webhook.WebhookState, str], converse: Start, pool: asyncpg.Pool
) -> None:
    state, url = hook
    state.delay_s = 10.0
    plan = ToolPlan("lookup_order", {"order_id": "A-17"}, answer_prefix=PREFIX)
    async with _model("anthropic", plan) as model:
        started = time.perf_counter()
        sid, replies, _ = await converse(model.provider, url, timeout_s=0.5)
        await asyncio.wait_for(replies.ended.wait(), 10)

        assert time.perf_counter() - started < 5
        [(result, is_error)] = _tool_results(model)
        assert is_error
        assert "took too long" in json.loads(result)["error"]
        assert not replies.done[0].interrupted
        assert PREFIX.strip() in replies.done[0].text
    [row] = await _calls(pool, sid)
    assert row["status"] == "timeout"


async def test_a_host_off_the_allow_list_is_refused_at_call_time(
    hook: tuple[webhook.WebhookState, str], converse: Start, pool: asyncpg.Pool
) -> None:
    state, url = hook
    plan = ToolPlan("lookup_order", {"order_id": "A-17"}, answer_prefix=PREFIX)
    async with _model("anthropic", plan) as model:
        # Same server, but named by a host the allow-list does not hold.
        sid, replies, _ = await converse(model.provider, url.replace("127.0.0.1", "localhost"))
        await asyncio.wait_for(replies.ended.wait(), 10)

        assert state.requests == [], "the webhook was never called"
        [(result, is_error)] = _tool_results(model)
        assert is_error
        assert "not allowed" in json.loads(result)["error"]
    [row] = await _calls(pool, sid)
    assert row["status"] == "error"


async def test_arguments_the_schema_refuses_never_reach_the_webhook(
    hook: tuple[webhook.WebhookState, str], converse: Start, pool: asyncpg.Pool
) -> None:
    state, url = hook
    plan = ToolPlan("lookup_order", {"order_id": 17}, answer_prefix=PREFIX)
    async with _model("openai", plan) as model:
        sid, replies, _ = await converse(model.provider, url)
        await asyncio.wait_for(replies.ended.wait(), 10)

        assert state.requests == []
        [(result, _)] = _tool_results(model)
        assert "invalid arguments (order_id)" in json.loads(result)["error"]
    [row] = await _calls(pool, sid)
    assert (row["status"], row["arguments"]) == ("refused", {"order_id": 17})
