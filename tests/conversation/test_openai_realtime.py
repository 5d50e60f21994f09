"""OpenAI's own Python SDK, unchanged, against Parley's ``WS /v1/realtime``: a secured gateway
in front of the in-process workers with the scripted doubles (the STT's VAD is the real
Silero model, so speech is real speech). Every server event is checked against the SDK's
own type of that event. Covered: the session updated, a spoken question streamed from a WAV
and answered (transcript, text and audio deltas, usage), barge-in with ``truncate`` and the
memory keeping only what was heard, manual commit, G.711 both ways, text-only responses and
created items, malformed events answered with ``error`` while the connection stays up, and a
bad token refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast, get_args

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel
from websockets.exceptions import ConnectionClosed

from bench.audio import silence, spoken, word_error_rate
from conftest import SecuredPlatform
from parley_common.audio._pcm import resample_pcm
from parley_common.audio.g711 import encode_g711
from parley_gateway.realtime.bridge import cut_at_word
from parley_llm.providers.scripted import ScriptedLlmProvider

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
QUESTION = "What is the weather like in Paris today?"
HEARD = "hello there"  # what the scripted STT hears, whatever it is sent
MS_PER_CHAR = 60  # the scripted TTS
PCM_BYTES_PER_MS = 48  # audio/pcm: 24 kHz, 16 bits
LONG_REPLY = " ".join(
    f"Sentence number {i} of a long answer that keeps the assistant talking." for i in range(1, 9)
)
# The SDK's model of each server event type: every event received must validate against it.
_SDK_EVENTS: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls
    for cls in get_args(get_args(RealtimeServerEvent)[0])
}


@dataclass
class Realtime:
    """One SDK connection and every event it received, in order."""

    conn: AsyncRealtimeConnection
    events: list[Any] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: ConnectionClosed | None = None

    async def read(self) -> None:
        try:
            async for event in self.conn:
                # The SDK parses without validating: validate against its type here.
                _SDK_EVENTS[event.type].model_validate(event.to_dict())
                self.events.append(event)
                self._changed.set()
        except ConnectionClosed as exc:
            self.closed = exc
            self._changed.set()

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    async def until(self, done: Callable[[], bool], within_s: float = 20) -> None:
        async with asyncio.timeout(within_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def event(self, kind: str, count: int = 1, within_s: float = 20) -> Any:
        await self.until(lambda: len(self.of(kind)) >= count, within_s)
        return self.of(kind)[count - 1]

    async def append(self, pcm16k: bytes, chunk_ms: int = 100) -> None:
        """PCM16 16 kHz sent as audio/pcm 24 kHz appends, as fast as they go."""
        pcm = resample_pcm(pcm16k, 16000, 24000)
        step = chunk_ms * PCM_BYTES_PER_MS
        for i in range(0, len(pcm), step):
            await self.conn.input_audio_buffer.append(
                audio=base64.b64encode(pcm[i : i + step]).decode()
            )


def _client(platform: SecuredPlatform, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=key,
        base_url=f"{platform.url}/v1",
        websocket_base_url=f"{platform.url.replace('http://', 'ws://')}/v1",
    )


@contextlib.asynccontextmanager
async def _realtime(
    platform: SecuredPlatform, user: str, model: str = "gpt-realtime"
) -> AsyncIterator[Realtime]:
    client = _client(platform, platform.token(user))
    async with client.realtime.connect(model=model) as conn:
        session = Realtime(conn)
        reader = asyncio.create_task(session.read())
        try:
            await session.event("session.created")
            yield session
        finally:
            await conn.close()
            await reader
    await client.close()


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def _update(rt: Realtime, **session: Any) -> Any:
    count = len(rt.of("session.updated"))
    # The SDK's own param type; Parley's ``parley`` extension rides along as an extra key.
    await rt.conn.session.update(session=cast(Any, {"type": "realtime", **session}))
    return (await rt.event("session.updated", count + 1)).session


def _audio_ms(rt: Realtime, response_id: str, bytes_per_ms: int = PCM_BYTES_PER_MS) -> float:
    data = b"".join(
        base64.b64decode(e.delta)
        for e in rt.of("response.output_audio.delta")
        if e.response_id == response_id
    )
    return len(data) / bytes_per_ms


async def _transcript(platform: SecuredPlatform, user: str, session_id: str) -> list[Any]:
    async with httpx.AsyncClient(base_url=platform.url, headers=platform.headers(user)) as c:
        got = await c.get(f"/api/v1/sessions/{session_id}/transcript")
    assert got.status_code == 200, got.text
    return list(got.json()["entries"])


@pytest.fixture(scope="module")
def question() -> bytes:
    return spoken(QUESTION)


async def test_sdk_client_is_answered_and_barges_in_with_truncate(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "It is sunny in Paris."
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        assert rt.of("session.created")[0].session.model == "gpt-realtime"
        session = await _update(
            rt,
            instructions="Answer like a weather forecaster.",
            audio={
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
            },
            parley=SCRIPTED,
        )
        assert session.instructions == "Answer like a weather forecaster."
        detection = session.audio.input.turn_detection
        assert (detection.type, detection.silence_duration_ms) == ("server_vad", 500)
        # The scripted TTS has no "alloy": the provider's own voice speaks, and says so.
        assert session.audio.output.voice is None
        assert session.to_dict()["parley"]["tts_provider"] == "scripted"

        # A spoken question, then enough silence to end the turn.
        await rt.append(question + silence(1500))
        started = await rt.event("input_audio_buffer.speech_started")
        committed = await rt.event("input_audio_buffer.committed")
        assert committed.item_id == started.item_id
        heard = await rt.event("conversation.item.input_audio_transcription.completed")
        assert (heard.item_id, heard.transcript) == (started.item_id, HEARD)
        done = await rt.event("response.done")
        assert done.response.status == "completed"
        answer = done.response.output[0]
        assert (answer.role, answer.status) == ("assistant", "completed")
        assert answer.content[0].transcript == scripted_llm.reply
        text = "".join(e.delta for e in rt.of("response.output_audio_transcript.delta"))
        assert text == scripted_llm.reply
        assert _audio_ms(rt, done.response.id) == pytest.approx(
            len(scripted_llm.reply) * MS_PER_CHAR, abs=50
        )
        # The scripted model counts words as tokens.
        prompt = scripted_llm.runs[-1].messages
        assert done.response.usage.output_tokens == len(scripted_llm.reply.split())
        assert done.response.usage.input_tokens == sum(len(m.content.split()) for m in prompt)
        assert await rt.event("rate_limits.updated")
        session_id = rt.of("session.updated")[-1].session.to_dict()["parley"]["session_id"]

        # A second question, answered at length; the user talks over the answer.
        scripted_llm.reply = LONG_REPLY
        await rt.append(question + silence(1500))
        created = await rt.event("response.created", 2)
        long_id = created.response.id
        await rt.until(lambda: _audio_ms(rt, long_id) > 1500)
        barge = len(rt.of("input_audio_buffer.speech_started"))
        # The interrupting question's answer: it may start (speculatively) as soon as the
        # user pauses, before the turn ends.
        scripted_llm.reply = "Sure."
        await rt.append(question)
        interrupting = await rt.event("input_audio_buffer.speech_started", barge + 1)
        # As OpenAI documents: stop playing, and say how much was played.
        item_id = (await rt.event("response.output_item.added", 2)).item.id
        await rt.conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=800)
        truncated = await rt.event("conversation.item.truncated")
        assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 800)
        cut = await rt.event("response.done", 2)
        assert cut.response.status == "cancelled"
        assert cut.response.status_details.reason == "turn_detected"
        await rt.conn.conversation.item.retrieve(item_id=item_id)
        kept = (await rt.event("conversation.item.retrieved")).item.content[0].transcript
        assert kept == cut_at_word(LONG_REPLY, 800 // MS_PER_CHAR)
        assert interrupting.item_id != started.item_id
        await rt.append(silence(1500))  # the interrupting question is answered too
        await rt.event("response.done", 3)

    # The memory keeps only what was heard: the next prompt and the stored transcript.
    history = [m.content for m in scripted_llm.runs[-1].messages if m.role == "assistant"]
    assert history[-1] == kept
    turns = await _transcript(secured_platform, user, session_id)
    cut_turn = [t for t in turns if t["role"] == "assistant"][1]
    assert (cut_turn["text"], cut_turn["interrupted"]) == (kept, True)


async def test_manual_commit_answers_only_what_was_committed(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "Committed and answered."
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        session = await _update(
            rt,
            audio={"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}},
            parley=SCRIPTED,
        )
        assert session.audio.input.turn_detection is None
        await rt.conn.input_audio_buffer.commit()
        empty = await rt.event("error")
        assert empty.error.code == "input_audio_buffer_commit_empty"

        await rt.append(question)
        await rt.conn.input_audio_buffer.clear()
        await rt.event("input_audio_buffer.cleared")
        await rt.conn.input_audio_buffer.commit()
        assert (await rt.event("error", 2)).error.code == "input_audio_buffer_commit_empty"

        await rt.append(question + silence(3000))  # silence: no turn ends by itself
        await asyncio.sleep(1.0)
        assert not rt.of("response.created")
        assert not rt.of("input_audio_buffer.speech_started")
        await rt.conn.input_audio_buffer.commit()
        await rt.conn.response.create()
        committed = await rt.event("input_audio_buffer.committed")
        added = await rt.event("conversation.item.added")
        assert (added.item.id, added.item.role) == (committed.item_id, "user")
        heard = await rt.event("conversation.item.input_audio_transcription.completed")
        assert (heard.item_id, heard.transcript) == (committed.item_id, HEARD)
        done = await rt.event("response.done")
        assert done.response.status == "completed"
        assert done.response.output[0].content[0].transcript == scripted_llm.reply
        # One commit, one answer: a second response.create has nothing to answer.
        await rt.conn.response.create()
        assert (await rt.event("error", 3)).error.code == "response_needs_input"
    assert len(rt.of("response.created")) == 1


async def test_g711_in_and_out(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "Phone quality."
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        session = await _update(
            rt,
            audio={
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None},
                "output": {"format": {"type": "audio/pcmu"}},
            },
            parley=SCRIPTED,
        )
        assert session.audio.output.format.type == "audio/pcmu"
        ulaw = encode_g711(resample_pcm(question, 16000, 8000), "ulaw")
        await rt.conn.input_audio_buffer.append(audio=base64.b64encode(ulaw).decode())
        await rt.conn.input_audio_buffer.commit()
        done = await rt.event("response.done")
    assert rt.of("session.updated")[-1].session.to_dict()["parley"]["output_sample_rate"] == 8000
    # μ-law: one byte a sample at 8 kHz.
    assert _audio_ms(rt, done.response.id, 8) == pytest.approx(
        len(scripted_llm.reply) * MS_PER_CHAR, abs=50
    )


async def test_text_items_text_responses_and_deleted_answers(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "First answer."
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        await _update(rt, output_modalities=["text"], parley=SCRIPTED)
        await rt.conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Remember the milk"}],
            }
        )
        await rt.conn.response.create()
        done = await rt.event("response.done")
        assert done.response.output_modalities == ["text"]
        assert (await rt.event("response.output_text.done")).text == "First answer."
        assert not rt.of("response.output_audio.delta")
        first = done.response.output[0].id

        await rt.conn.conversation.item.delete(item_id=first)
        assert (await rt.event("conversation.item.deleted")).item_id == first
        scripted_llm.reply = "Second answer."
        await rt.conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "and the bread"}],
            }
        )
        await rt.event("response.done", 2)
        # System and assistant history cannot enter Parley's memory: refused, not faked.
        await rt.conn.conversation.item.create(
            item={"type": "message", "role": "system", "content": [{"type": "input_text"}]}
        )
        assert (await rt.event("error")).error.code == "item_unsupported"
    history = [(m.role, m.content) for m in scripted_llm.runs[-1].messages if m.role != "system"]
    assert history == [("user", "Remember the milk"), ("user", "and the bread")]


async def test_malformed_events_get_errors_and_the_connection_stays_up(
    secured_platform: SecuredPlatform,
) -> None:
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        await rt.conn.send_raw("{not json")
        await rt.conn.send_raw('{"type": "no.such.event", "event_id": "evt_1"}')
        await rt.conn.send_raw(
            '{"type": "session.update", "event_id": "evt_2",'
            ' "session": {"type": "realtime", "audio": {"input": {"format": "opus"}}}}'
        )
        await rt.conn.send_raw('{"type": "conversation.item.retrieve", "item_id": "item_nope"}')
        errors = [await rt.event("error", n) for n in (1, 2, 3, 4)]
        session = await _update(rt, instructions="Still here.")
    assert [e.error.type for e in errors] == ["invalid_request_error"] * 4
    assert [e.error.code for e in errors] == [
        "invalid_json",
        "invalid_event_type",
        "invalid_session",
        "item_not_found",
    ]
    assert [e.error.event_id for e in errors[:3]] == [None, "evt_1", "evt_2"]
    assert session.instructions == "Still here."
    assert rt.closed is None


async def test_a_session_that_cannot_start_is_told_and_starts_once_fixed(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Now it works."
    user = _user()
    message = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Hello?"}],
    }
    async with _realtime(secured_platform, user) as rt:
        # No OPENAI_API_KEY here: the OpenAI voice cannot take the session.
        await _update(rt, parley={**SCRIPTED, "tts_provider": "openai"})
        await rt.conn.conversation.item.create(item=cast(Any, message))
        refused = await rt.event("error")
        await rt.conn.conversation.item.create(item=cast(Any, message))
        again = await rt.event("error", 2)  # told again, not tried again
        await _update(rt, parley=SCRIPTED)
        await rt.conn.conversation.item.create(item=cast(Any, message))
        done = await rt.event("response.done")
    assert refused.error.type == "invalid_request_error"
    assert refused.error.code == "provider_unavailable"
    assert again.error.message == refused.error.message
    assert done.response.output[0].content[0].transcript == "Now it works."
    assert len(rt.of("conversation.item.added")) == 2  # the refused items never existed


@pytest.mark.models
@pytest.mark.slow
async def test_the_real_whisper_hears_the_appends_and_piper_speaks_the_answer(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    """The offline STT and TTS (the answer scripted, to stay fast): the 24 kHz appends reach
    Whisper as the words spoken, and the audio deltas are Piper's speech."""
    scripted_llm.reply = "It is sunny."
    user = _user()
    async with _realtime(secured_platform, user) as rt:
        await _update(
            rt,
            audio={
                "input": {
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            },
            parley={**SCRIPTED, "stt_provider": "local", "tts_provider": "local"},
        )
        await rt.append(question + silence(1500))
        heard = await rt.event("conversation.item.input_audio_transcription.completed", within_s=60)
        done = await rt.event("response.done", within_s=60)
    # Piper's random noise makes a word or two of eight vary ("Paris" / "pairs").
    assert word_error_rate(QUESTION, heard.transcript) <= 0.35, heard.transcript
    assert done.response.status == "completed"
    pcm = b"".join(
        base64.b64decode(e.delta)
        for e in rt.of("response.output_audio.delta")
        if e.response_id == done.response.id
    )
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    assert len(samples) > 24000 * 0.3, "less than 0.3 s of audio"
    assert float(np.sqrt(np.mean(samples**2))) > 300, "the answer is silent"


async def test_a_bad_token_is_refused(secured_platform: SecuredPlatform) -> None:
    client = _client(secured_platform, "not-a-parley-token")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        rt = Realtime(conn)
        await rt.read()
    await client.close()
    assert [e.type for e in rt.events] == ["error"]
    assert rt.events[0].error.code == "token_invalid"
    assert rt.closed is not None
    assert rt.closed.rcvd is not None
    assert rt.closed.rcvd.code == 4401
