"""S2's ``POST /api/v1/voice/chat`` through a secured gateway whose session workers answer
(scripted doubles): a new conversation, one continued (the dialogue sees the earlier turns),
one resumed after it ended, another user's, the answer's file formats, bad voice_config and
bad audio, and a pipeline that stops answering."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from bench.audio import silence, spoken
from conftest import SecuredPlatform
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED
from .s2_audio import played, recording

CHAT = "/api/v1/voice/chat"
HEARD = "hello there"  # what the scripted STT hears in any recording
MS_PER_CHAR = 60  # the scripted TTS


@pytest.fixture(scope="module")
def question() -> bytes:
    return recording(spoken("What is the weather like today?"), "wav", "pcm_s16le")


async def _chat(
    client: httpx.AsyncClient,
    audio: bytes,
    chatbot: str,
    *,
    conversation_id: str | None = None,
    voice_config: dict[str, Any] | str | None = None,
) -> httpx.Response:
    data: dict[str, str] = {"chatbot_id": chatbot}
    if conversation_id is not None:
        data["conversation_id"] = conversation_id
    # A dict adds to the scripted providers; a string is sent as it is.
    if isinstance(voice_config, str):
        data["voice_config"] = voice_config
    else:
        data["voice_config"] = json.dumps({**SCRIPTED, **(voice_config or {})})
    files = {"audio_file": ("question.wav", audio, "audio/wav")}
    return await client.post(CHAT, files=files, data=data)


def _client(platform: SecuredPlatform, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.url, headers=platform.headers(user), timeout=60)


def _chatbot() -> str:
    return f"chatbot-{uuid.uuid4().hex[:8]}"


def _user() -> str:
    # Sessions stay active until they idle out, and a user may hold only so many at once.
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_a_new_conversation_is_answered_with_text_audio_and_timings(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "It is sunny and warm."
    chatbot, user = _chatbot(), _user()
    async with _client(secured_platform, user) as client:
        reply = await _chat(client, question, chatbot)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        session = await client.get(f"/api/v1/sessions/{body['conversation_id']}")
    assert body["transcript"] == HEARD
    assert body["confidence"] == 1.0
    assert body["response_text"] == "It is sunny and warm."
    assert (body["chatbot_id"], body["audio_format"], body["audio_mime_type"]) == (
        chatbot,
        "mp3",
        "audio/mpeg",
    )
    answer = played(base64.b64decode(body["audio_data"]))
    assert (answer.container, answer.rate, body["sample_rate"]) == ("mp3", 24000, 24000)
    seconds = answer.seconds
    spoken_chars = len("It is sunny and warm.")
    assert seconds == pytest.approx(spoken_chars * MS_PER_CHAR / 1000, abs=0.1)
    assert body["audio_duration_s"] == pytest.approx(spoken_chars * MS_PER_CHAR / 1000, abs=0.03)
    timings = body["timings"]
    for stage in ("decode_ms", "stt_ms", "llm_ms", "tts_ms", "encode_ms"):
        assert 0 <= timings[stage] <= timings["total_ms"], stage
    assert timings["llm_first_token_ms"] is not None
    # The conversation is the caller's session, on the chatbot, with the voice_config's options.
    assert session.status_code == 200
    assert session.json()["user_id"] == user
    assert session.json()["chatbot_id"] == chatbot
    assert session.json()["config"]["llm_provider"] == "scripted"


async def test_a_continued_conversation_shares_its_memory_even_after_it_ended(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    chatbot = _chatbot()
    async with _client(secured_platform, _user()) as client:
        scripted_llm.reply = "First answer."
        first = (await _chat(client, question, chatbot)).json()
        conversation = first["conversation_id"]
        scripted_llm.reply = "Second answer."
        second = await _chat(client, question, chatbot, conversation_id=conversation)
        assert second.status_code == 200, second.text
        assert second.json()["conversation_id"] == conversation
        assert second.json()["turn_id"] == first["turn_id"] + 1
        # The dialogue answered the second turn knowing the first.
        prompt = [(m.role, m.content) for m in scripted_llm.runs[-1].messages]
        assert prompt[-3:] == [("user", HEARD), ("assistant", "First answer."), ("user", HEARD)]

        ended = await client.post(f"/api/v1/sessions/{conversation}/end")
        assert ended.json()["status"] == "ended"
        scripted_llm.reply = "Third answer."
        third = await _chat(client, question, chatbot, conversation_id=conversation)
        assert third.status_code == 200, third.text
        assert third.json()["response_text"] == "Third answer."
        # Resumed: active again, and the memory was reloaded from the transcript.
        assert (await client.get(f"/api/v1/sessions/{conversation}")).json()["status"] == "active"
        answers = [m.content for m in scripted_llm.runs[-1].messages if m.role == "assistant"]
        assert answers == ["First answer.", "Second answer."]
        transcript = (await client.get(f"/api/v1/sessions/{conversation}/transcript")).json()
        assert [e["text"] for e in transcript["entries"] if e["role"] == "assistant"] == [
            "First answer.",
            "Second answer.",
            "Third answer.",
        ]


async def test_another_users_or_chatbots_conversation_is_not_found(
    secured_platform: SecuredPlatform, question: bytes
) -> None:
    chatbot = _chatbot()
    async with (
        _client(secured_platform, _user()) as ada,
        _client(secured_platform, _user()) as bob,
        httpx.AsyncClient(base_url=secured_platform.url) as nobody,
    ):
        mine = (await _chat(ada, question, chatbot)).json()["conversation_id"]
        theirs = await _chat(bob, question, chatbot, conversation_id=mine)
        wrong_bot = await _chat(ada, question, _chatbot(), conversation_id=mine)
        unknown = await _chat(ada, question, chatbot, conversation_id=str(uuid.uuid4()))
        changed = await _chat(
            ada, question, chatbot, conversation_id=mine, voice_config={"tts_speed": 1.5}
        )
        no_token = await nobody.post(
            CHAT, files={"audio_file": ("q.wav", question)}, data={"chatbot_id": chatbot}
        )
    for answer in (theirs, wrong_bot, unknown):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "conversation_not_found"
        assert "response_text" not in answer.json()
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "conversation_config_fixed"
    assert "speed" in changed.json()["error"]["message"]
    assert no_token.status_code == 401


async def test_the_answer_file_follows_audio_format_and_pitch(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "A tone."
    async with _client(secured_platform, _user()) as client:
        webm = await _chat(client, question, _chatbot(), voice_config={"audio_format": "webm"})
        wav = await _chat(
            client, question, _chatbot(), voice_config={"audio_format": "wav", "tts_pitch": 2.0}
        )
    assert webm.status_code == 200, webm.text
    assert webm.json()["audio_mime_type"] == "audio/webm"
    answer = played(base64.b64decode(webm.json()["audio_data"]))
    assert (answer.container, answer.rate) == ("matroska", 48000)  # Opus plays at 48 kHz
    assert answer.seconds == pytest.approx(len("A tone.") * MS_PER_CHAR / 1000, abs=0.05)
    samples = played(base64.b64decode(wav.json()["audio_data"])).samples
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak_hz = np.fft.rfftfreq(len(samples), 1 / 24000)[int(np.argmax(spectrum))]
    assert peak_hz == pytest.approx(440 * 2 ** (2 / 12), rel=0.02)  # two semitones up


@pytest.mark.parametrize(
    ("voice_config", "says"),
    [
        ("{not json", "not valid JSON"),
        ('["tts_speed"]', "not valid"),
        (json.dumps({**SCRIPTED, "tts_speed": 5}), "tts_speed"),
        (json.dumps({**SCRIPTED, "favourite_colour": "blue"}), "favourite_colour"),
        (json.dumps({**SCRIPTED, "audio_format": "aiff"}), "audio_format"),
    ],
)
async def test_a_bad_voice_config_is_a_clear_422(
    secured_platform: SecuredPlatform, question: bytes, voice_config: str, says: str
) -> None:
    async with _client(secured_platform, _user()) as client:
        reply = await _chat(client, question, _chatbot(), voice_config=voice_config)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_voice_config"
    assert says in error["message"]


async def test_bad_audio_is_refused_and_no_session_is_started(
    secured_platform: SecuredPlatform, pool: asyncpg.Pool, question: bytes
) -> None:
    rng = np.random.default_rng(3)
    cases = {
        "noise": (rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes(), 415, "audio_unsupported"),
        "empty": (b"", 422, "audio_empty"),
        "silence": (recording(silence(2000), "wav", "pcm_s16le"), 422, "audio_silent"),
        "long": (
            recording(spoken("hello") * 40 + silence(31_000), "wav", "pcm_s16le"),
            422,
            "audio_too_long",
        ),
    }
    user = f"carol-{uuid.uuid4().hex[:6]}"
    async with _client(secured_platform, user) as client:
        for name, (audio, status, code) in cases.items():
            reply = await _chat(client, audio, _chatbot())
            assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), name
        # Refused before any session: the user has none.
        still = await _chat(client, question, _chatbot())
        assert still.status_code == 200, still.text
    sessions = await pool.fetchval("SELECT count(*) FROM voice_sessions WHERE user_id = $1", user)
    assert sessions == 1


async def test_a_pipeline_that_stops_answering_is_a_504(
    secured_platform: SecuredPlatform,
    scripted_llm: ScriptedLlmProvider,
    question: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_CHAT_TIMEOUT_S", "1")
    scripted_llm.reply, scripted_llm.delta_delay_s = "Slow words that never come in time.", 3.0
    async with _client(secured_platform, _user()) as client:
        started = asyncio.get_running_loop().time()
        reply = await _chat(client, question, _chatbot())
        took = asyncio.get_running_loop().time() - started
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["code"] == "chat_timeout"
    assert "1 s" in reply.json()["error"]["message"]
    assert took < 2.5


async def test_a_client_that_leaves_stops_the_wait(
    secured_platform: SecuredPlatform,
    scripted_llm: ScriptedLlmProvider,
    question: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = "Slow words " * 10, 0.5
    caplog.set_level(logging.INFO, logger="parley_gateway.routes.client_gone")
    async with _client(secured_platform, _user()) as client:
        request = asyncio.create_task(_chat(client, question, _chatbot()))
        await asyncio.sleep(1.0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    for _ in range(50):
        if any("client left" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.1)
    assert any("client left" in r.getMessage() for r in caplog.records)
