"""Tool calling by voice through the gateway: a chatbot's webhook tool, stored over REST,
called by Claude or GPT (the Anthropic and OpenAI emulators, reached through Parley's
adapters and the official SDKs) during a spoken turn; the webhook gets the arguments, the
model gets the result, the answer is spoken and the call is on the session's record. A
user who speaks again while a slow tool runs cancels the call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_common.tool_hosts import HOSTS_ENV
from parley_emulators import webhook
from parley_emulators.base import running
from parley_emulators.dialogue import ToolPlan
from parley_emulators.vendors import Anthropic, OpenAi
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_llm.tools import FILLER
from tests.conversation.conftest import vendors_at
from tests.conversation.knowledge_docs import HANDBOOK_TXT

KEY = "test-key"
PLAN = ToolPlan("lookup_order", {"order_id": "A-17"}, answer_prefix="Your order: ")
# A chatbot offering end_call: the model hangs up, then says goodbye.
HANG_UP = ToolPlan("end_call", answer_prefix="Goodbye, and thank you for calling. ")
LOOK_UP = ToolPlan("knowledge_search", {"query": "When does the bakery open?"}, answer_prefix="")
RESULT = {"status": "shipped", "eta": "Thursday"}
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}


@dataclass
class Cloud:
    anthropic: Anthropic
    openai: OpenAi
    hook: webhook.WebhookState
    hook_url: str


@pytest.fixture(scope="module")
async def cloud(monkeymodule: pytest.MonkeyPatch) -> AsyncIterator[Cloud]:
    anthropic, openai = Anthropic(api_key=KEY), OpenAi(api_key=KEY)
    anthropic.tool_plan = openai.tool_plan = (PLAN, HANG_UP, LOOK_UP)
    hook = webhook.WebhookState(result=RESULT)
    async with contextlib.AsyncExitStack() as stack:
        anthropic_url = await stack.enter_async_context(running(anthropic.app()))
        openai_url = await stack.enter_async_context(running(openai.app()))
        hook_url = await stack.enter_async_context(running(webhook.app(hook)))
        monkeymodule.setenv(HOSTS_ENV, "127.0.0.1")
        urls = {"anthropic": anthropic_url, "openai": f"{openai_url}/v1"}
        await stack.enter_async_context(vendors_at(monkeymodule, KEY, urls, [LLM_PROVIDERS]))
        yield Cloud(anthropic, openai, hook, hook_url + webhook.TOOL_PATH)


async def _chatbot_with_tool(
    platform_url: str, url: str, timeout_s: float = 5.0, body: dict[str, Any] | None = None
) -> str:
    chatbot = f"tools-{uuid.uuid4().hex[:8]}"
    body = body or {
        "name": "lookup_order",
        "description": "Look up an order by its id.",
        "parameters": SCHEMA,
        "url": url,
        "timeout_s": timeout_s,
        "secret_header": "authorization",
        "secret_value": "Bearer hook-secret",
    }
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        created = await client.post(f"/api/v1/chatbots/{chatbot}/tools", json=body)
    assert created.status_code == 201, created.text
    return chatbot


def _tool_result(body: dict[str, Any]) -> str:
    """The tool result ending an Anthropic or OpenAI request."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        content: str = last["content"]
        return content
    [block] = last["content"]
    assert block["type"] == "tool_result"
    result: str = block["content"]
    return result


def _config(chatbot: str, llm: str) -> dict[str, Any]:
    return {
        "chatbot_id": chatbot,
        "stt_provider": "scripted",
        "llm_provider": llm,
        "tts_provider": "scripted",
        "interrupt_sensitivity": "high",
    }


@pytest.mark.parametrize("llm", ["anthropic", "openai"])
async def test_a_spoken_question_calls_the_webhook_and_the_answer_is_spoken(
    llm: str, cloud: Cloud, platform_url: str
) -> None:
    chatbot = await _chatbot_with_tool(platform_url, cloud.hook_url)
    before = len(cloud.hook.requests)
    call = await Call.start(platform_url, **_config(chatbot, llm))
    try:
        await call.say(await speak("Where is my order?") + silence(1200), realtime=False)
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
        turn = done["data"]["turn_id"]
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=30)
    finally:
        await call.close()

    [called] = cloud.hook.requests[before:]
    assert called.body == {"order_id": "A-17"}
    assert called.headers["authorization"] == "Bearer hook-secret"
    model = cloud.anthropic.messages if llm == "anthropic" else cloud.openai.chat
    assert json.loads(_tool_result(model.requests[-1].body)) == RESULT, "it reached the model"
    text = done["data"]["text"]
    assert text.startswith("Your order: ")
    assert json.loads(text.removeprefix("Your order: ")) == RESULT
    assert call.audio(turn), "the answer was spoken"
    # The call is on the transcript, with the answer that used it (rows are written behind).
    calls: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        for _ in range(100):
            transcript = await client.get(f"/api/v1/sessions/{call.session_id}/transcript")
            answers = [e for e in transcript.json()["entries"] if e["role"] == "assistant"]
            calls = [c for e in answers for c in e["tool_calls"]]
            if calls:
                break
            await asyncio.sleep(0.1)
    [recorded] = calls
    assert (recorded["name"], recorded["status"]) == ("lookup_order", "ok")
    assert recorded["arguments"] == {"order_id": "A-17"}
    assert json.loads(recorded["result"]) == RESULT
    assert "hook-secret" not in transcript.text


async def test_speaking_again_during_a_slow_tool_cancels_the_call(
    cloud: Cloud, platform_url: str
) -> None:
    chatbot = await _chatbot_with_tool(platform_url, cloud.hook_url, timeout_s=25)
    cloud.hook.delay_s = 30.0
    cloud.hook.closed.clear()
    before = len(cloud.hook.requests)
    call = await Call.start(platform_url, **_config(chatbot, "anthropic"))
    try:
        question = await speak("Where is my order?") + silence(1200)
        await call.say(question, realtime=False)
        filler = await call.wait_for(
            "response", lambda e: FILLER.strip() in e["data"]["text"], within_s=30
        )
        assert cloud.hook.requests[before:], "the tool is running"
        await call.say(question, realtime=False)
        await asyncio.wait_for(cloud.hook.closed.wait(), 30)
        first = filler["data"]["turn_id"]
        # The next turn took over: its answer is the one that runs now.
        await call.wait_for("response", lambda e: e["data"]["turn_id"] > first, within_s=20)
    finally:
        cloud.hook.delay_s = 0.0
        await call.close()
    assert cloud.hook.requests[before].closed_at is not None, "the webhook call was aborted"


async def test_the_assistant_hangs_up_after_its_goodbye(cloud: Cloud, platform_url: str) -> None:
    builtin = {"name": "end_call", "kind": "builtin"}
    chatbot = await _chatbot_with_tool(platform_url, cloud.hook_url, body=builtin)
    call = await Call.start(platform_url, **_config(chatbot, "anthropic"))
    try:
        # One breath, no pause inside: it must stay one turn.
        await call.say(await speak("Please end the call now") + silence(1200), realtime=False)
        action = await call.wait_for("action", within_s=30)
        turn = action["data"]["turn_id"]
        assert action["data"]["action"] == "end_call"
        done = await call.wait_for(
            "response", lambda e: e["data"]["done"] and e["data"]["turn_id"] == turn, within_s=30
        )
        assert done["data"]["text"].startswith("Goodbye, and thank you for calling.")
        await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=30)
        # Once the goodbye has played, the session ends and the socket closes saying why.
        await asyncio.wait_for(call.ws.wait_closed(), 20)
        assert call.ws.close_code == 4410
        assert call.ws.close_reason == "the assistant ended the call"
    finally:
        await call.close()
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        session = (await client.get(f"/api/v1/sessions/{call.session_id}")).json()
    assert session["status"] == "ended"


async def test_knowledge_search_finds_the_chatbots_documents(
    cloud: Cloud, platform_url: str
) -> None:
    builtin = {"name": "knowledge_search", "kind": "builtin"}
    chatbot = await _chatbot_with_tool(platform_url, cloud.hook_url, body=builtin)
    async with httpx.AsyncClient(base_url=platform_url, timeout=120) as client:
        files = {"file": ("handbook.txt", HANDBOOK_TXT, "text/plain")}
        uploaded = await client.post(f"/api/v1/chatbots/{chatbot}/documents", files=files)
        assert uploaded.status_code == 201, uploaded.text
    call = await Call.start(platform_url, **_config(chatbot, "openai"))
    try:
        await call.say(await speak("When does the bakery open?") + silence(1200), realtime=False)
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
    finally:
        await call.close()

    passages = json.loads(_tool_result(cloud.openai.chat.requests[-1].body))["passages"]
    assert "opens at 6:40 in the morning" in passages[0]
    assert passages[0].startswith("(from handbook.txt)")
    assert "6:40" in done["data"]["text"], "the answer was made of the passage"
