"""Conversation summaries end to end: sessions held by the in-process workers, ended by their
client (S1's end), by the idle reaper after an S2 chat, or with no turn at all; their title
and summary, written by the session's own model from the stored transcript, come back on the
session and in both transcript answers. A cloud model (an emulator through its SDK) that is
down leaves the summary failed until it is regenerated."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from bench.audio import spoken
from bench.call import Call
from parley_common.bus import Bus, Received
from parley_common.contracts.summaries import SUMMARY_SUBJECT, SummaryRequest
from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings
from parley_emulators.base import Fault, running
from parley_emulators.vendors import OpenAi
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_llm.summary import INSTRUCTIONS, serve_summaries

from .conftest import SCRIPTED
from .s2_audio import recording

QUESTION = "Which museums are open in Lisbon on Monday?"
ANSWER = "The tile museum is open on Monday; most others close."
SUMMARY = (
    "Title: Lisbon museums on Monday\n"
    "Summary: The user asked which Lisbon museums open on Mondays and heard that the tile "
    "museum does."
)
TITLE = "Lisbon museums on Monday"
TEXT = "The user asked which Lisbon museums open on Mondays and heard that the tile museum does."
HEARD = "hello there"  # what the scripted STT hears in any recording


@pytest.fixture(scope="module")
async def summaries(
    nats_url: str, pool: asyncpg.Pool, platform_workers: None
) -> AsyncIterator[Bus]:
    """The dialogue service's summary handler (as every llm worker runs it) beside the
    in-process workers; yields a bus of this test's own to watch its requests."""
    bus = await Bus.connect(nats_url, name="summaries")
    await serve_summaries(bus, pool)
    await bus.flush()
    yield bus
    await bus.close()


def _summary_runs(llm: ScriptedLlmProvider) -> list[Any]:
    return [r for r in llm.runs if r.messages and r.messages[0].content == INSTRUCTIONS]


async def _typed_turn(call: Call, text: str) -> None:
    await call.send_json({"type": "text_message", "text": text})
    await call.wait_for("response", lambda e: e["data"].get("done"), within_s=20)


async def _summary(client: httpx.AsyncClient, sid: str, status: str) -> dict[str, Any]:
    """The session's summary once its status is ``status``."""
    found: dict[str, Any] = {}

    async def reached() -> bool:
        body = (await client.get(f"/api/v1/sessions/{sid}")).json()
        found.update(body)
        return (body.get("summary") or {}).get("status") == status

    await eventually(reached, within_s=20, every_s=0.1)
    summary: dict[str, Any] = found["summary"]
    return summary


async def test_a_session_ended_by_its_client_gets_a_title_and_summary_of_its_conversation(
    platform_url: str, summaries: Bus, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = ANSWER
    call = await Call.start(platform_url, **SCRIPTED)
    try:
        await _typed_turn(call, QUESTION)
    finally:
        await call.close()
    before = len(_summary_runs(scripted_llm))
    scripted_llm.reply = SUMMARY
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        ended = await client.post(f"/api/voice/{call.session_id}/end")
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "ended"  # S1's shape, unchanged

        summary = await _summary(client, call.session_id, "ready")
        assert (summary["title"], summary["text"]) == (TITLE, TEXT)
        assert summary["generated_at"] is not None

        transcript = (await client.get(f"/api/v1/sessions/{call.session_id}/transcript")).json()
        assert transcript["summary"] == summary
        assert [e["text"] for e in transcript["entries"]] == [QUESTION, ANSWER]
        s1 = (await client.get(f"/api/voice/{call.session_id}/transcript")).json()
        assert s1["success"] is True
        assert (s1["summary"]["title"], s1["summary"]["text"]) == (TITLE, TEXT)
        assert s1["summary"]["generatedAt"] == summary["generated_at"]
    # One call to the session's model, whose prompt held the stored conversation.
    (run,) = _summary_runs(scripted_llm)[before:]
    assert QUESTION in run.messages[-1].content
    assert ANSWER in run.messages[-1].content


async def test_a_session_without_turns_gets_no_summary_and_no_model_call(
    platform_url: str, summaries: Bus, scripted_llm: ScriptedLlmProvider
) -> None:
    asked: list[str] = []

    async def watch(msg: Received) -> None:
        asked.append(SummaryRequest.model_validate_json(msg.data).session_id)

    watching = await summaries.subscribe(SUMMARY_SUBJECT, watch)
    await summaries.flush()
    before = len(_summary_runs(scripted_llm))
    call = await Call.start(platform_url, **SCRIPTED)
    await call.close()
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        await client.post(f"/api/v1/sessions/{call.session_id}/end")
        # The dialogue worker released it and asked; the handler takes requests in order,
        # so once a regeneration behind that request is answered, the first was handled.
        await eventually(lambda: call.session_id in asked)
        regenerated = await client.post(f"/api/v1/sessions/{call.session_id}/summary")
        assert regenerated.status_code == 200, regenerated.text
        assert regenerated.json()["summary"] is None
        transcript = (await client.get(f"/api/v1/sessions/{call.session_id}/transcript")).json()
        assert transcript["entries"] == []
        assert transcript["summary"] is None
    await watching.unsubscribe()
    assert len(_summary_runs(scripted_llm)) == before


@pytest.fixture(scope="module")
async def idle_gateway(
    nats_url: str, database_url: str, platform_workers: None
) -> AsyncIterator[str]:
    """A gateway whose sessions idle out after a few seconds."""
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        idle_timeout_s=5.0,
    )
    async with serving(create_app(settings, AuthSettings.model_construct()), port) as url:
        yield url


async def test_an_s2_chat_conversation_that_idles_out_is_summarised(
    idle_gateway: str, summaries: Bus, scripted_llm: ScriptedLlmProvider, pool: asyncpg.Pool
) -> None:
    scripted_llm.reply = SUMMARY  # the chat's answer and the summary alike
    audio = recording(spoken("Hello there, how are you?"), "wav", "pcm_s16le")
    async with httpx.AsyncClient(base_url=idle_gateway, timeout=60) as client:
        files = {"audio_file": ("question.wav", audio, "audio/wav")}
        data = {
            "chatbot_id": f"chatbot-{uuid.uuid4().hex[:8]}",
            "voice_config": json.dumps(SCRIPTED),
        }
        reply = await client.post("/api/v1/voice/chat", files=files, data=data)
        assert reply.status_code == 200, reply.text
        sid = reply.json()["conversation_id"]
        summary = await _summary(client, sid, "ready")
        assert summary["title"] == TITLE
        session = (await client.get(f"/api/v1/sessions/{sid}")).json()
    assert session["status"] == "ended"
    ended_by = await pool.fetchval(
        "SELECT metadata->>'end_reason' FROM voice_sessions WHERE id = $1", uuid.UUID(sid)
    )
    assert ended_by == "idle"  # the reaper's doing, not a client's
    prompt = _summary_runs(scripted_llm)[-1].messages[-1].content
    assert f"User: {HEARD}" in prompt


@pytest.fixture
def cloud_llm() -> OpenAi:
    return OpenAi(api_key="test-key", reply=SUMMARY)


@contextlib.asynccontextmanager
async def _openai_at(vendor: OpenAi, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with running(vendor.app()) as url:
        monkeypatch.setenv("OPENAI_API_KEY", vendor.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        # Adapters are built once per process from the environment: rebuilt for this one.
        await LLM_PROVIDERS.aclose()
        await LLM_PROVIDERS.prepare()
        try:
            yield
        finally:
            await LLM_PROVIDERS.aclose()


async def test_a_cloud_model_that_is_down_leaves_the_summary_failed_until_regenerated(
    platform_url: str,
    summaries: Bus,
    cloud_llm: OpenAi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _openai_at(cloud_llm, monkeypatch):
        config = {**SCRIPTED, "llm_provider": "openai"}
        call = await Call.start(platform_url, **config)
        try:
            await _typed_turn(call, QUESTION)
        finally:
            await call.close()
        # Down for the summary: every try the SDK makes (its retries included) gets a 503.
        down = Fault(status=503, body={"error": {"message": "overloaded", "type": "x"}})
        cloud_llm.chat.fail_next(*[down] * 10)
        async with httpx.AsyncClient(base_url=platform_url, timeout=60) as client:
            await client.post(f"/api/v1/sessions/{call.session_id}/end")
            failed = await _summary(client, call.session_id, "failed")
            assert failed["title"] is None
            cloud_llm.chat.faults.clear()

            regenerated = await client.post(f"/api/v1/sessions/{call.session_id}/summary")
            assert regenerated.status_code == 200, regenerated.text
            summary = regenerated.json()["summary"]
            assert (summary["status"], summary["title"], summary["text"]) == ("ready", TITLE, TEXT)
        sent = cloud_llm.chat.last("/chat/completions").body["messages"]
        assert sent[0]["content"] == INSTRUCTIONS
        assert QUESTION in sent[-1]["content"]
