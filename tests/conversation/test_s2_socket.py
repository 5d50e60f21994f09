"""S2's ``WS /api/v1/ws/voice/{chatbot_id}`` with a Python client speaking S2's protocol to a
secured gateway (scripted session workers): ping/pong, a recording sent after audio_stop
(as S2's VoiceChatClient does) or on its own, typed messages, each answer one playable file
in the chatbot's audio_format, S2's events in order, bad recordings and a missing one told,
token refusals, another user's conversation, one conversation across REST and the socket,
and the native PCM protocol on the same path with ``?audio=pcm``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.audio import spoken
from conftest import SecuredPlatform
from parley_common.testing import eventually
from parley_gateway.realtime import audio_in
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED
from .s2_audio import played, recording

MS_PER_CHAR = 60  # the scripted TTS
HEARD = "hello there"  # the scripted STT, whatever it is sent


@dataclass
class S2Client:
    """One S2 connection: every message received, in order (JSON events as dicts, binary
    messages as bytes)."""

    ws: ClientConnection
    log: list[dict[str, Any] | bytes] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                self.log.append(message if isinstance(message, bytes) else json.loads(message))
                self._changed.set()

    async def send(self, message: dict[str, Any] | bytes) -> None:
        await self.ws.send(message if isinstance(message, bytes) else json.dumps(message))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.log if isinstance(m, dict) and m.get("type") == kind]

    def files(self) -> list[bytes]:
        return [m for m in self.log if isinstance(m, bytes)]

    async def until(self, done: Callable[[], bool], within_s: float = 20) -> None:
        async with asyncio.timeout(within_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def event(self, kind: str, count: int = 1, within_s: float = 20) -> dict[str, Any]:
        await self.until(lambda: len(self.events(kind)) >= count, within_s)
        return self.events(kind)[count - 1]


def _ws_url(platform: SecuredPlatform, chatbot: str, token: str | None, **query: str) -> str:
    params = {**({"token": token} if token else {}), **query}
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{platform.url.replace('http://', 'ws://')}/api/v1/ws/voice/{chatbot}?{qs}"


@contextlib.asynccontextmanager
async def _s2(
    platform: SecuredPlatform, chatbot: str, user: str, **query: str
) -> AsyncIterator[S2Client]:
    ws = await websockets.connect(_ws_url(platform, chatbot, platform.token(user), **query))
    client = S2Client(ws)
    client._reader = asyncio.create_task(client._read())
    try:
        yield client
    finally:
        await ws.close()
        await client._reader


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def _chatbot(platform: SecuredPlatform, user: str, **config: Any) -> str:
    """A chatbot of ``user`` answering with the scripted workers."""
    chatbot = f"chatbot-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=platform.url, headers=platform.headers(user)) as c:
        stored = await c.put(f"/api/v1/voice/config/{chatbot}", json={**SCRIPTED, **config})
    assert stored.status_code == 200, stored.text
    return chatbot


@pytest.fixture(scope="module")
def question() -> bytes:
    return recording(spoken("What time is it in Tokyo?"))


async def test_ping_is_answered_with_pong(secured_platform: SecuredPlatform) -> None:
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    async with _s2(secured_platform, chatbot, user) as client:
        await client.send({"type": "ping"})
        pong = await client.event("pong")
    assert pong["type"] == "pong"


async def test_audio_stop_before_the_recording_is_answered_with_one_webm_file(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    scripted_llm.reply = "It is nine in the morning."
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    async with _s2(secured_platform, chatbot, user) as client:
        # S2's client: audio_start, then on release audio_stop, then the blob when ready.
        await client.send({"type": "audio_start"})
        await client.send({"type": "audio_stop"})
        await asyncio.sleep(0.5)
        await client.send(question)
        await client.event("voice_processing_complete")
        await asyncio.sleep(0.3)  # nothing else of the turn may follow
    heard = client.events("transcription_complete")
    assert [(e["text"], e["confidence"]) for e in heard] == [(HEARD, 1.0)]
    assert [e["text"] for e in client.events("response_generated")] == [scripted_llm.reply]
    files = client.files()
    assert len(files) == 1
    answer = played(files[0])
    assert (answer.container, answer.codec) == ("matroska", "opus")
    assert answer.seconds == pytest.approx(len(scripted_llm.reply) * MS_PER_CHAR / 1000, abs=0.05)
    # S2's order: transcript, answer text, its audio, then done; no error on the way.
    order = [
        m if isinstance(m, bytes) else m["type"]
        for m in client.log
        if isinstance(m, bytes) or m["type"].startswith(("transcription", "response_g", "voice"))
    ]
    assert order == [
        "transcription_complete",
        "response_generated",
        files[0],
        "voice_processing_complete",
    ]


async def test_recordings_without_a_stop_and_typed_messages_are_answered_in_the_chatbots_format(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "Noted."
    user = _user()
    chatbot = await _chatbot(secured_platform, user, audio_format="mp3")
    wav = recording(spoken("Remember the milk"), "wav", "pcm_s16le")
    async with _s2(secured_platform, chatbot, user) as client:
        await client.send(wav)  # a whole utterance, no audio_start/audio_stop around it
        await client.event("voice_processing_complete")
        await client.send({"type": "text_message", "content": "and the bread"})
        await client.event("voice_processing_complete", count=2)
    assert [e["text"] for e in client.events("response_generated")] == ["Noted.", "Noted."]
    assert len(client.files()) == 2
    for data in client.files():
        assert played(data).container == "mp3"
    assert scripted_llm.runs[-1].messages[-1].content == "and the bread"
    assert not client.events("voice_processing_error")


async def test_a_bad_or_missing_recording_is_a_voice_processing_error_and_the_call_goes_on(
    secured_platform: SecuredPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio_in, "RECORDING_WAIT_S", 0.5)
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    async with _s2(secured_platform, chatbot, user) as client:
        await client.send(b"definitely not a recording" * 100)
        bad = await client.event("voice_processing_error")
        started = time.perf_counter()
        await client.send({"type": "audio_start"})
        await client.send({"type": "audio_stop"})
        missing = await client.event("voice_processing_error", count=2)
        waited = time.perf_counter() - started
        await client.send({"type": "ping"})
        await client.event("pong")
    assert "not audio" in bad["error"]
    assert bad["timestamp"]
    assert "no recording followed" in missing["error"]
    assert 0.4 < waited < 3.0
    assert not client.files()


async def test_token_refusals_and_another_users_conversation(
    secured_platform: SecuredPlatform, question: bytes
) -> None:
    owner, other = _user(), _user()
    chatbot = await _chatbot(secured_platform, owner)
    shared_bot = f"chatbot-{uuid.uuid4().hex[:8]}"  # configured by nobody: anyone may use it
    async with httpx.AsyncClient(
        base_url=secured_platform.url, headers=secured_platform.headers(owner), timeout=60
    ) as rest:
        chat = await rest.post(
            "/api/v1/voice/chat",
            files={"audio_file": ("q.webm", question, "audio/webm")},
            data={"chatbot_id": shared_bot, "voice_config": json.dumps(SCRIPTED)},
        )
    assert chat.status_code == 200, chat.text
    conversation = chat.json()["conversation_id"]

    async def close_code(url: str) -> tuple[int, str]:
        async with websockets.connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason

    expired = secured_platform.token(owner, ttl_s=-60)
    assert (await close_code(_ws_url(secured_platform, chatbot, None)))[0] == 4401
    assert (await close_code(_ws_url(secured_platform, chatbot, "not-a-jwt")))[0] == 4401
    assert (await close_code(_ws_url(secured_platform, chatbot, expired)))[0] == 4401
    theirs = _ws_url(
        secured_platform, shared_bot, secured_platform.token(other), conversation_id=conversation
    )
    code, reason = await close_code(theirs)
    assert code == 4404
    assert "conversation" in reason
    # Another user's chatbot does not exist for them either.
    code, reason = await close_code(
        _ws_url(secured_platform, chatbot, secured_platform.token(other))
    )
    assert (code, "chatbot" in reason) == (4404, True)


async def test_a_conversation_continues_from_rest_to_the_socket(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, question: bytes
) -> None:
    user = _user()
    chatbot = await _chatbot(secured_platform, user, audio_format="wav")
    scripted_llm.reply = "The REST answer."
    async with httpx.AsyncClient(
        base_url=secured_platform.url, headers=secured_platform.headers(user), timeout=60
    ) as rest:
        chat = await rest.post(
            "/api/v1/voice/chat",
            files={"audio_file": ("q.webm", question)},
            data={"chatbot_id": chatbot},
        )
        conversation = chat.json()["conversation_id"]
        ended = await rest.post(f"/api/v1/sessions/{conversation}/end")
        assert ended.json()["status"] == "ended"
    scripted_llm.reply = "The socket answer."
    async with _s2(secured_platform, chatbot, user, conversation_id=conversation) as client:
        ready = await client.event("ready")
        await client.send({"type": "text_message", "content": "and now?"})
        await client.event("voice_processing_complete")
    assert ready["data"]["session_id"] == conversation
    prompt = [(m.role, m.content) for m in scripted_llm.runs[-1].messages][-3:]
    assert prompt == [("user", HEARD), ("assistant", "The REST answer."), ("user", "and now?")]
    # The REST answer was mp3 (its default); the socket's is the chatbot's wav.
    assert base64.b64decode(chat.json()["audio_data"])[:3] in (b"ID3", b"\xff\xfb")
    assert played(client.files()[0]).container == "wav"


async def test_pcm_opt_in_streams_native_frames_and_takes_interrupts(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = " ".join(f"Sentence {i} of a long answer." for i in range(30))
    scripted_llm.delta_delay_s = 0.02
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    async with _s2(secured_platform, chatbot, user, audio="pcm") as client:
        ready = await client.event("ready")
        await client.send({"type": "text_message", "text": "tell me a story"})
        start = await client.event("audio_start")
        await client.until(lambda: len(client.files()) >= 10)
        await client.send({"type": "interrupt"})
        interrupted = await client.event("interrupted")
    assert ready["data"]["output_sample_rate"] == 24000
    assert start["data"]["encoding"] == "pcm_s16le"
    frames = client.files()
    # Paced PCM frames of at most 40 ms (24 kHz PCM16), not files.
    assert all(0 < len(f) <= 24000 * 2 * 40 // 1000 and len(f) % 2 == 0 for f in frames)
    assert not any(f.startswith((b"\x1a\x45\xdf\xa3", b"RIFF", b"ID3")) for f in frames)
    assert interrupted["data"]["turn_id"] == start["data"]["turn_id"]
    # The interrupt reached the dialogue: the answer's stream was cut.
    run = scripted_llm.runs[-1]
    await eventually(lambda: run.cancelled)
    assert not run.finished


async def test_a_pcm_frame_over_the_limit_is_refused_and_the_call_goes_on(
    secured_platform: SecuredPlatform,
) -> None:
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    async with _s2(secured_platform, chatbot, user, audio="pcm") as client:
        await client.event("ready")
        await client.send(bytes(64 * 1024 + 2))  # S2's socket takes recordings this big
        error = await client.event("error")
        await client.send({"type": "ping"})
        await client.event("pong")
    assert error["data"]["code"] == "message_too_large"
    assert "640 bytes" in error["data"]["message"]


async def test_an_unknown_audio_mode_is_refused(secured_platform: SecuredPlatform) -> None:
    user = _user()
    chatbot = await _chatbot(secured_platform, user)
    url = _ws_url(secured_platform, chatbot, secured_platform.token(user), audio="flac")
    async with websockets.connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "pcm" in closed.value.rcvd.reason
