"""Spoken conversations through the gateway on the cloud stacks of the two systems Parley
replaces, every provider an emulator of its real wire protocol reached through its official
SDK, each with a barge-in: memory keeps only what was heard, and each provider's own way of
stopping is used (Aura's Clear, the ElevenLabs stream closed). Plus a fallback: the primary
STT answers 503 and the local Whisper finishes the turn."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.events import ProviderSwitched
from parley_emulators.base import Fault, running
from parley_emulators.vendors import Anthropic, Deepgram, ElevenLabs, Groq, OpenAi
from tests.conversation.conftest import vendors_at

QUESTION = "What is the weather like in Paris today?"
LONG_REPLY = " ".join(
    f"Here is sentence number {i} of a long answer, so that there is time to interrupt."
    for i in range(1, 30)
)
KEY = "test-key"


@dataclass
class Cloud:
    openai: OpenAi
    groq: Groq
    anthropic: Anthropic
    deepgram: Deepgram
    elevenlabs: ElevenLabs


@pytest.fixture(scope="module")
async def cloud(monkeymodule: pytest.MonkeyPatch) -> AsyncIterator[Cloud]:
    vendors = Cloud(
        OpenAi(api_key=KEY, transcript=QUESTION, reply=LONG_REPLY),
        Groq(api_key=KEY, transcript=QUESTION, reply=LONG_REPLY),
        Anthropic(api_key=KEY, reply=LONG_REPLY),
        Deepgram(api_key=KEY, transcript=QUESTION),
        ElevenLabs(api_key=KEY),
    )
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            name: await stack.enter_async_context(running(getattr(vendors, name).app()))
            for name in ("openai", "groq", "anthropic", "deepgram", "elevenlabs")
        }
        urls["openai"] += "/v1"
        await stack.enter_async_context(vendors_at(monkeymodule, KEY, urls))
        yield vendors


@pytest.fixture
async def question() -> bytes:
    return await speak(QUESTION)


@dataclass
class Conversation:
    call: Call
    interrupted: dict[str, Any]
    heard: str  # what memory kept of the interrupted answer


@contextlib.asynccontextmanager
async def converse(
    platform_url: str, pool: asyncpg.Pool, question: bytes, **providers: Any
) -> AsyncIterator[Conversation]:
    """A spoken question, the answer, a spoken barge-in, the second answer."""
    call = await Call.start(platform_url, interrupt_sensitivity="high", **providers)
    try:
        await call.say(question + silence(700))
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=20)
        assert final["data"]["text"].lower().startswith("what is the weather")
        start = await call.wait_for("audio_start", within_s=20)
        await asyncio.sleep(1.0)  # the assistant is talking
        await call.say(question + silence(700))
        interrupted = await call.wait_for("interrupted", within_s=15)
        assert interrupted["data"]["turn_id"] == start["data"]["turn_id"]
        await call.wait_for(
            "response",
            lambda e: e["data"]["done"] and e["data"]["turn_id"] > start["data"]["turn_id"],
            within_s=20,
        )
        row = await pool.fetchrow(
            "SELECT text, interrupted FROM voice_transcripts WHERE session_id = $1"
            " AND turn_id = $2 AND role = 'assistant'",
            uuid.UUID(call.session_id),
            start["data"]["turn_id"],
        )
        assert row is not None
        assert row["interrupted"] is True
        assert row["text"] == interrupted["data"]["heard_text"]
        assert 0 < len(row["text"]) < len(LONG_REPLY)
        yield Conversation(call, interrupted, row["text"])
    finally:
        await call.close()


def _assistant_turns(body: Any) -> list[str]:
    """The assistant messages of an LLM request, as plain text."""
    texts = []
    for message in body["messages"]:
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        texts.append(content)
    return texts


async def test_s1_stack_whisper_claude_openai_tts(
    cloud: Cloud, platform_url: str, pool: asyncpg.Pool, question: bytes
) -> None:
    stack = {"stt_provider": "whisper", "llm_provider": "anthropic", "tts_provider": "openai"}
    async with converse(platform_url, pool, question, **stack) as talk:
        # The next question went to Claude with only the heard part of the cut answer.
        request = cloud.anthropic.messages.last("/v1/messages")
        assert _assistant_turns(request.body)[-1].strip() == talk.heard.strip()
    assert cloud.openai.transcribe.last("/audio/transcriptions")
    assert cloud.openai.speech.last("/audio/speech")


async def test_s2_stack_groq_and_deepgram_aura_cleared_on_interrupt(
    cloud: Cloud, platform_url: str, pool: asyncpg.Pool, question: bytes
) -> None:
    stack = {"stt_provider": "groq", "llm_provider": "groq", "tts_provider": "deepgram"}
    async with converse(platform_url, pool, question, **stack) as talk:
        speak_sockets = [r for r in cloud.deepgram.speak.requests if r.method == "WEBSOCKET"]
        cut = speak_sockets[0]
        assert {"type": "Clear"} in cut.messages, "Aura was told to drop the unspoken audio"
        assert _assistant_turns(cloud.groq.chat.last("/chat/completions").body)[-1] == talk.heard
    assert cloud.groq.transcribe.last("/audio/transcriptions")


async def test_deepgram_live_claude_and_elevenlabs_stream_closed_on_interrupt(
    cloud: Cloud, platform_url: str, pool: asyncpg.Pool, question: bytes
) -> None:
    stack = {"stt_provider": "deepgram", "llm_provider": "anthropic", "tts_provider": "elevenlabs"}
    # Synthesis a little faster than real time, as the real service: still streaming when cut.
    cloud.elevenlabs.state.stream_delay_s = 0.05
    async with converse(platform_url, pool, question, **stack) as talk:
        streams = [r for r in cloud.elevenlabs.state.requests if "stream-input" in r.path]
        assert streams[0].closed_at is not None, "the cut answer's stream was closed"
        cut_at = talk.call.arrival(talk.interrupted)
        assert streams[0].closed_at < cut_at + 1.0
        partials = [e for e in talk.call.events("transcript") if not e["data"]["is_final"]]
        assert partials, "Deepgram's interim results reached the client as partials"


async def test_a_failing_stt_provider_falls_back_to_the_local_model(
    cloud: Cloud, platform_url: str, nats_url: str, question: bytes
) -> None:
    down = Fault(status=503, body={"error": {"message": "overloaded", "type": "server_error"}})
    cloud.openai.transcribe.fail_next(*[down] * 10)
    observer = await Bus.connect(nats_url, name="fallback-observer")
    switched: list[ProviderSwitched] = []

    async def on_switch(msg: Received) -> None:
        switched.append(ProviderSwitched.model_validate_json(msg.data))

    await observer.subscribe(subjects.event("provider.switched"), on_switch)
    config: dict[str, Any] = {
        "stt_provider": "whisper",
        "stt_fallback": ["local"],
        "llm_provider": "scripted",
        "tts_provider": "scripted",
        "interrupt_sensitivity": "high",
    }
    call = await Call.start(platform_url, **config)
    try:
        await call.say(question + silence(700))
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=60)
        heard = final["data"]["text"].lower()
        # Whisper base, run here: most words right ("Paris" is sometimes "pairs").
        words = set(QUESTION.lower().rstrip("?").split())
        assert len(words & set(heard.rstrip("?.").split())) >= len(words) - 2, heard
        await call.wait_for("response", lambda e: e["data"]["done"], within_s=20)
        mine = [s for s in switched if s.session_id == call.session_id]
        assert [(s.service, s.provider, s.fallback) for s in mine] == [("stt", "whisper", "local")]
    finally:
        await call.close()
        await observer.close()
        cloud.openai.transcribe.faults.clear()
