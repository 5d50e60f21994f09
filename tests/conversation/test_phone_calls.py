"""Phone calls end to end: a simulated Twilio or Telnyx (``phone_simulator``) rings a secured
gateway whose in-process workers run the scripted test doubles, speaks a Piper-spoken
question as G.711 at 8 kHz in real time and plays what comes back in real time, echoing
marks as the providers do. The question is answered with audible audio, a barge-in makes
Parley send ``clear`` and the memory keeps what the echoed marks say was heard, keypad
digits are a typed turn, the session ends with the call, and a stream that does not carry
the token its webhook minted is refused before any session starts."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from bench.audio import silence, speak
from parley_common.audio.g711 import G711Law
from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import Heard, interrupt_adapter
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings, new_secret
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_gateway.telephony.settings import TelephonySettings
from parley_launcher.embedded.process import free_port
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED
from .phone_simulator import RATE, Carrier, PhoneCall, Provider, post_webhook, read_answer

QUESTION = "What is the weather like in Paris today?"
LONG_REPLY = " ".join(
    f"Sentence number {i} of a long answer that keeps the assistant talking for a while."
    for i in range(1, 25)
)
SCRIPTED_MS_PER_CHAR = 60  # the scripted voice's pace
MARK_MS = 40  # at most one chunk of Parley's phone audio: a mark after each
# Marks echoed while Parley decides a barge-in and sends clear (the event loop is shared).
CUT_LAG_MS = 200


@pytest.fixture(scope="module")
async def carrier(
    nats_url: str, database_url: str, platform_workers: None
) -> AsyncIterator[Carrier]:
    """A secured gateway trusting a Twilio auth token and a Telnyx signing key, in front of
    the scripted in-process workers (the same ones ``secured_platform`` uses)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    telnyx_key = Ed25519PrivateKey.generate()
    public = telnyx_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    auth_token = new_secret()
    telephony = TelephonySettings(
        public_url=base_url,
        twilio_auth_token=SecretStr(auth_token),
        telnyx_public_key=base64.b64encode(public).decode(),
    )
    gateway = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        telephony=telephony,
    )
    auth = AuthSettings(secret=SecretStr(new_secret()))
    async with serving(create_app(gateway, auth), port) as url:
        assert url.rstrip("/") == base_url
        yield Carrier(base_url, auth_token, telnyx_key)


@pytest.fixture
async def question() -> bytes:
    return await speak(QUESTION)


def _options(**extra: str) -> dict[str, str]:
    """A call's session options (the voice webhook's query), with a chatbot id of its own
    by which the test finds the call's session."""
    return {**SCRIPTED, "chatbot_id": f"phone-{uuid.uuid4().hex[:12]}", **extra}


@contextlib.asynccontextmanager
async def _dialled(
    carrier: Carrier, provider: Provider, query: dict[str, str], **kw: Any
) -> AsyncIterator[PhoneCall]:
    call = await PhoneCall.dial(carrier, provider, query, **kw)
    try:
        yield call
    finally:
        await call.close()


async def _session(pool: asyncpg.Pool, chatbot_id: str) -> asyncpg.Record:
    """The call's session row, once the stream's start has made it."""
    rows: list[asyncpg.Record] = []

    async def made() -> bool:
        rows[:] = await pool.fetch(
            "SELECT id, user_id, status, config FROM voice_sessions WHERE chatbot_id=$1",
            chatbot_id,
        )
        return bool(rows)

    await eventually(made)
    assert len(rows) == 1
    return rows[0]


async def _transcript(pool: asyncpg.Pool, sid: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT turn_id, role, text, interrupted FROM voice_transcripts"
            " WHERE session_id=$1 ORDER BY turn_id, role DESC",
            sid,
        )
    )


def _dominant_hz(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * RATE / len(samples))


@pytest.mark.parametrize(
    ("provider", "law"), [("twilio", "ulaw"), ("telnyx", "ulaw"), ("telnyx", "alaw")]
)
async def test_a_spoken_question_is_answered_with_audio_the_phone_plays(
    carrier: Carrier,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    question: bytes,
    provider: Provider,
    law: G711Law,
) -> None:
    reply = "It is sunny and warm in Paris today."
    scripted_llm.reply = reply
    options = _options(interrupt_sensitivity="high")
    async with _dialled(carrier, provider, options, law=law) as call:
        session = await _session(pool, options["chatbot_id"])
        assert session["user_id"] == "telephony"
        assert session["config"]["output_sample_rate"] == RATE
        await call.say(question + silence(1000))
        # The scripted voice speaks the reply's characters at 60 ms each (sentence gaps
        # aside); the phone plays it in real time.
        spoken_ms = SCRIPTED_MS_PER_CHAR * len(reply.replace(" ", "")) * 0.8
        await call.until(lambda: call.played_ms >= spoken_ms, within_s=20)
        answer = bytes(call.played)
        assert call.level() > 1000, "the answer decodes to silence"
        # The scripted tone is 440 Hz: G.711 of the stream's law both ways, at 8 kHz.
        assert abs(_dominant_hz(answer) - 440) < 10
        await call.until(lambda: abs(call.heard_ms - call.played_ms) < MARK_MS, within_s=5)
        assert call.marks_echoed, "Parley sent no marks"
        assert call.wire_errors == []
        rows = await _transcript(pool, session["id"])
        assert [(r["role"], r["text"]) for r in rows] == [
            ("user", "hello there"),
            ("assistant", reply),
        ]
        await call.hang_up()

    async def ended() -> bool:
        status = await pool.fetchval("SELECT status FROM voice_sessions WHERE id=$1", session["id"])
        return bool(status == "ended")

    await eventually(ended)  # the call's session ends with the call


@pytest.mark.parametrize(("provider", "marks_back_on_clear"), [("twilio", True), ("telnyx", False)])
async def test_barge_in_clears_the_phone_and_memory_keeps_what_the_marks_say_was_heard(
    carrier: Carrier,
    pool: asyncpg.Pool,
    nats_url: str,
    scripted_llm: ScriptedLlmProvider,
    question: bytes,
    provider: Provider,
    marks_back_on_clear: bool,
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    options = _options(interrupt_sensitivity="high")
    # A speakerphone: the caller's microphone hears what the phone plays, 10 dB down; and
    # the phone plays audio 250 ms after Parley sent it (a clock would misjudge heard).
    call_kw = {
        "echo_gain": 0.3,
        "echo_marks_on_clear": marks_back_on_clear,
        "playout_delay_ms": 250,
    }
    async with _dialled(carrier, provider, options, **call_kw) as call:
        session = await _session(pool, options["chatbot_id"])
        observer = await Bus.connect(nats_url, name="phone-observer")
        heard: list[Heard] = []

        async def on_interrupt(msg: Received) -> None:
            event = msg.decode(interrupt_adapter)
            if isinstance(event, Heard):
                heard.append(event)

        await observer.subscribe(
            subjects.session(str(session["id"]), SessionChannel.INTERRUPT), on_interrupt
        )
        try:
            await call.say(question + silence(800))
            await call.until(lambda: call.played_ms > 2000, within_s=20)  # talking
            assert call.clears == [], "the assistant's own echo interrupted it"
            scripted_llm.reply = "Short answer."
            played_before = call.played_ms
            await call.say(question + silence(800))  # the barge-in comes while it is said
            assert len(call.clears) == 1
            clear = call.clears[0]
            await eventually(lambda: bool(heard))
            # Parley's "heard" is where an echoed mark put it: the last one it had read when
            # it cut the turn (those echoed in the meantime had not reached it yet), never
            # beyond the phone's playback, which lags the audio sent by 250 ms here.
            marks_at = [at_ms for _, at_ms in call.marks_echoed]
            assert any(abs(at_ms - heard[0].audio_ms) < 1 for at_ms in marks_at), heard
            assert 0 <= clear.marked_ms - heard[0].audio_ms <= CUT_LAG_MS, (heard, clear)
            assert heard[0].audio_ms > played_before - 1000
            # Nothing of the old answer came after the clear: the next audio is the answer
            # to the question, which the caller was still asking for a second at least.
            after = [at - clear.at for at in call.media_at if at > clear.at + 0.1]
            assert not after or after[0] > 1.0, after[:3]
            # The new question is answered: more audio plays after the clear.
            await call.until(lambda: call.played_ms > clear.played_ms + 500, within_s=15)
            assert call.wire_errors == []
            rows = {(r["turn_id"], r["role"]): r for r in await _transcript(pool, session["id"])}
            old = next(r for (turn, role), r in sorted(rows.items()) if role == "assistant")
            assert old["interrupted"] is True
            kept = old["text"]
            assert 0 < len(kept) < len(LONG_REPLY)
            assert LONG_REPLY.startswith(kept)
            # The scripted voice's pace turns heard milliseconds into characters (the kept
            # text ends at a word).
            expected_chars = heard[0].audio_ms / SCRIPTED_MS_PER_CHAR
            assert expected_chars - 15 <= len(kept) <= expected_chars + 1, (kept, heard)
        finally:
            await observer.close()


async def test_keys_pressed_are_a_typed_turn(
    carrier: Carrier, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply = "You pressed forty two."
    options = _options()
    async with _dialled(carrier, "twilio", options) as call:
        session = await _session(pool, options["chatbot_id"])
        await call.press("42#")
        await call.until(lambda: call.played_ms > 500, within_s=15)
        rows = await _transcript(pool, session["id"])
        assert ("user", "(keypad: 42)") in [(r["role"], r["text"]) for r in rows]


@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
async def test_a_stream_without_its_webhooks_token_is_refused(
    carrier: Carrier, pool: asyncpg.Pool, provider: Provider
) -> None:
    options = _options()
    stream_url = carrier.base_url.replace("http", "ws") + f"/telephony/{provider}/stream"
    direct = await PhoneCall.open(stream_url, options, provider, "CA" + uuid.uuid4().hex)
    try:
        assert await direct.closed_with() == 4401
    finally:
        await direct.close()
    forged = await PhoneCall.open(
        stream_url, {**options, "token": "eyJhbGciOiJIUzI1NiJ9.e30.x"}, provider, "CA1"
    )
    try:
        assert await forged.closed_with() == 4401
    finally:
        await forged.close()
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM voice_sessions WHERE chatbot_id=$1", options["chatbot_id"]
        )
        == 0
    )


async def test_a_token_opens_one_stream_of_its_own_call(
    carrier: Carrier, pool: asyncpg.Pool
) -> None:
    options = _options()
    call_sid = "CA" + uuid.uuid4().hex
    response = await post_webhook(carrier, "twilio", call_sid, options)
    assert response.status_code == 200
    answer = read_answer(response.text)
    # The token is for call_sid: another call's stream cannot use it...
    other = await PhoneCall.open(answer.stream_url, answer.parameters, "twilio", "CA2")
    try:
        assert await other.closed_with() == 4401
    finally:
        await other.close()
    # ...nor can the parameters change under it...
    changed = {**answer.parameters, "voice": "another"}
    tampered = await PhoneCall.open(answer.stream_url, changed, "twilio", call_sid)
    try:
        assert await tampered.closed_with() == 4401
    finally:
        await tampered.close()
    # ...and once its call has used it, it is spent.
    first = await PhoneCall.open(answer.stream_url, answer.parameters, "twilio", call_sid)
    try:
        await _session(pool, options["chatbot_id"])
        again = await PhoneCall.open(answer.stream_url, answer.parameters, "twilio", call_sid)
        try:
            assert await again.closed_with() == 4401
        finally:
            await again.close()
    finally:
        await first.hang_up()
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM voice_sessions WHERE chatbot_id=$1", options["chatbot_id"]
        )
        == 1
    )
