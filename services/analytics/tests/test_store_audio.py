"""PARLEY_STORE_AUDIO: off by default (nothing listens to any session, no audio is kept);
on, each user utterance and each assistant reply of a real call through the gateway lands
in voice_audio as a FLAC file that decodes to the right length."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import av
import numpy as np
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import SecretStr

from bench.call import Call
from parley_analytics.__main__ import _service
from parley_analytics.pricing import DEFAULT_PRICES
from parley_analytics.settings import AnalyticsSettings
from parley_common.bus import Bus
from parley_common.contracts import subjects
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.subjects import SessionChannel
from parley_common.runtime import Runtime
from parley_common.testing import eventually
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
RATE = 16_000


@pytest.fixture(autouse=True)
def short_answers() -> Iterator[None]:
    """Short answers: the gateway plays them out in real time."""
    provider = get_llm(LlmName.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply, provider.reply = provider.reply, "Sure. Happy to help."
    yield
    provider.reply = reply


def _tone(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 0.3 * 32767).astype("<i2").tobytes()


@contextlib.asynccontextmanager
async def _analytics(
    nats_url: str, database_url: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, env: str
) -> AsyncIterator[None]:
    """The analytics service's main, configured from the environment as its process is."""
    if env:
        monkeypatch.setenv("PARLEY_STORE_AUDIO", env)
    else:
        monkeypatch.delenv("PARLEY_STORE_AUDIO", raising=False)
    settings = AnalyticsSettings(nats_url=nats_url, database_url=SecretStr(database_url))
    bus = await Bus.connect(nats_url, name="analytics-audio-test")
    runtime = Runtime("analytics", "analytics-audio-test", settings, bus, pool, asyncio.Event())
    task = asyncio.create_task(_service(DEFAULT_PRICES)(runtime))
    try:
        await asyncio.sleep(0.3)  # subscribed (or not) by now
        assert not task.done(), task
        yield
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, 15)
        await bus.close()


async def _someone_listens(nats_url: str) -> bool:
    """Whether anything subscribes to a session that nobody has (a fresh id): only a
    recorder of every session would."""
    probe = await Bus.connect(nats_url, name="audio-probe")
    try:
        subject = subjects.session(str(uuid.uuid4()), SessionChannel.AUDIO_IN)
        await probe.nc.request(subject, b"", timeout=0.5)
    except NoRespondersError:
        return False
    except NatsTimeoutError:
        return True
    finally:
        await probe.close()
    return True


async def _turn(call: Call, seconds: float) -> bytes:
    """One push-to-talk turn of ``seconds``; returns the answer's audio as the client got it."""
    after = len(call.log)
    await call.send_json({"type": "audio_start"})
    await call.say(_tone(seconds), realtime=False)
    await call.send_json({"type": "audio_stop"})
    start = await call.wait_for("audio_start", after=after, within_s=15)
    await call.wait_for("audio_end", after=after, within_s=15)
    return b"".join(r.audio or b"" for r in call.audio(start["data"]["turn_id"]))


def _decoded_seconds(data: bytes) -> tuple[float, int]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = stream.rate
    return samples / rate, rate


async def test_by_default_nothing_listens_and_no_audio_is_stored(
    platform_url: str,
    nats_url: str,
    database_url: str,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _analytics(nats_url, database_url, pool, monkeypatch, env=""):
        assert not await _someone_listens(nats_url)
        call = await Call.start(platform_url, **SCRIPTED)
        try:
            assert await _turn(call, 0.8)
        finally:
            await call.close()
        assert not await _someone_listens(nats_url)
    await asyncio.sleep(0.3)
    rows = await pool.fetchval(
        "SELECT count(*) FROM voice_audio WHERE session_id = $1", uuid.UUID(call.session_id)
    )
    assert rows == 0


async def test_with_store_audio_each_utterance_and_reply_is_a_decodable_file(
    platform_url: str,
    nats_url: str,
    database_url: str,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _analytics(nats_url, database_url, pool, monkeypatch, env="1"):
        assert await _someone_listens(nats_url)
        call = await Call.start(platform_url, **SCRIPTED)
        try:
            answers = [await _turn(call, 1.0), await _turn(call, 0.6)]
        finally:
            await call.close()
        sid = uuid.UUID(call.session_id)

        async def stored() -> bool:
            count: int = await pool.fetchval(
                "SELECT count(*) FROM voice_audio WHERE session_id = $1", sid
            )
            return count == 4

        await eventually(stored, within_s=10)
    rows = await pool.fetch(
        """SELECT turn_id, role, encoding, mime_type, sample_rate, duration_seconds,
                  interrupted, audio
           FROM voice_audio WHERE session_id = $1 ORDER BY turn_id, role DESC""",
        sid,
    )
    turns = [
        r["turn_id"]
        for r in await pool.fetch(
            "SELECT turn_id FROM voice_transcripts WHERE session_id = $1 AND role = 'user'"
            " ORDER BY turn_id",
            sid,
        )
    ]
    assert [(r["turn_id"], r["role"]) for r in rows] == [
        (turns[0], "user"),
        (turns[0], "assistant"),
        (turns[1], "user"),
        (turns[1], "assistant"),
    ]
    for row, spoken in zip(rows[::2], (1.0, 0.6), strict=True):
        seconds, rate = _decoded_seconds(row["audio"])
        assert (row["encoding"], row["mime_type"], rate) == ("flac", "audio/flac", RATE)
        assert row["sample_rate"] == RATE
        assert abs(seconds - spoken) < 0.05, (seconds, spoken)
        assert abs(row["duration_seconds"] - seconds) < 0.01
    for row, answer in zip(rows[1::2], answers, strict=True):
        seconds, rate = _decoded_seconds(row["audio"])
        assert (row["encoding"], rate, row["sample_rate"]) == ("flac", 24_000, 24_000)
        heard = len(answer) / 2 / 24_000
        assert heard > 0.5
        assert abs(seconds - heard) < 0.01, (seconds, heard)
        assert not row["interrupted"]


@pytest.mark.parametrize(("value", "enabled"), [("", False), ("0", False), ("1", True)])
def test_only_parley_store_audio_set_to_true_turns_it_on(
    monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool
) -> None:
    monkeypatch.setenv("PARLEY_STORE_AUDIO", value)
    assert AnalyticsSettings().store_audio is enabled
    monkeypatch.delenv("PARLEY_STORE_AUDIO")
    assert AnalyticsSettings().store_audio is False
