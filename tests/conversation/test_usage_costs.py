"""What a scripted set of calls cost, end to end: spoken and typed turns through the real
gateway, workers and bus, the analytics consumer pricing their usage with a price table from
a file, and then the session metrics API, the usage API and S1's two SQL queries, each
checked against figures computed here by hand from what was sent (audio length, reply
characters, the tokens the scripted model received) and the prices written below."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from bench.audio import silence
from bench.call import Call
from conftest import SecuredPlatform
from parley_analytics.consumer import consume
from parley_analytics.pricing import load_prices
from parley_analytics.recorder import Recorder
from parley_common.bus import Bus
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.testing import eventually
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED

# The prices of this test, in USD, as the file below states them.
STT_PER_MINUTE = Decimal("0.006")  # S1's Whisper figure
TTS_PER_1K_CHARS = Decimal("0.30")  # S1's ElevenLabs figure
LLM_INPUT_PER_1K = Decimal("1.5")
LLM_OUTPUT_PER_1K = Decimal("4")
PRICE_VERSION = "usage-test-1"
PRICE_FILE = {
    "version": PRICE_VERSION,
    "prices": [
        {"service": "stt", "provider": "scripted", "unit": "audio_seconds",
         "usd": str(STT_PER_MINUTE), "per": 60},
        {"service": "tts", "provider": "scripted", "unit": "characters",
         "usd": str(TTS_PER_1K_CHARS), "per": 1000},
        # The scripted model reports itself as model "scripted".
        {"service": "llm", "provider": "scripted", "model": "scripted", "unit": "input_tokens",
         "usd": str(LLM_INPUT_PER_1K), "per": 1000},
        {"service": "llm", "provider": "scripted", "model": "scripted",
         "unit": "output_tokens", "usd": str(LLM_OUTPUT_PER_1K), "per": 1000},
    ],
}  # fmt: skip

REPLY = "Sure, here it is."  # one sentence: the scripted voice is billed its characters
TYPED = "and how much did that cost"
HEARD = "hello there"  # the scripted STT's line for every utterance
FRAME_MS = 20

Line = tuple[str, str, str | None, str, Decimal, Decimal]


@dataclass
class Turn:
    """One turn as the test drove it, with what it must have cost."""

    turn_id: int
    input_tokens: int
    audio_ms: int | None = None  # None: a typed turn
    latency: dict[str, float | None] = field(default_factory=dict)  # as the client saw it

    output_tokens = len(REPLY.split())
    characters = len(REPLY)

    @property
    def audio_s(self) -> Decimal:
        return Decimal(self.audio_ms or 0) / 1000

    def lines(self) -> list[Line]:
        """(service, provider, model, unit, quantity, cost), in the API's order."""
        found: list[Line] = [
            ("llm", "scripted", "scripted", "input_tokens", Decimal(self.input_tokens),
             self.input_tokens * LLM_INPUT_PER_1K / 1000),
            ("llm", "scripted", "scripted", "output_tokens", Decimal(self.output_tokens),
             self.output_tokens * LLM_OUTPUT_PER_1K / 1000),
        ]  # fmt: skip
        if self.audio_ms is not None:
            found.append(
                ("stt", "scripted", None, "audio_seconds", self.audio_s,
                 self.audio_s * STT_PER_MINUTE / 60)
            )  # fmt: skip
        found.append(
            ("tts", "scripted", None, "characters", Decimal(self.characters),
             self.characters * TTS_PER_1K_CHARS / 1000)
        )  # fmt: skip
        return found

    @property
    def cost(self) -> Decimal:
        return sum((line[5] for line in self.lines()), Decimal(0))

    @property
    def transcribed(self) -> int:
        return len(HEARD) if self.audio_ms is not None else len(TYPED)


@dataclass
class Scenario:
    """The calls made, whose they were, and how long each lasted."""

    user: str
    sessions: dict[str, list[Turn]]
    durations: dict[str, float]
    other_user: str
    other_session: str

    def turns(self) -> list[Turn]:
        return [t for turns in self.sessions.values() for t in turns]


@pytest.fixture(scope="module")
async def analytics(
    nats_url: str, pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[None]:
    """The analytics consumer, as ``python -m parley_analytics`` runs it, with the test's
    price table given as a file."""
    path = Path(tmp_path_factory.mktemp("prices")) / "prices.json"
    path.write_text(json.dumps(PRICE_FILE))
    bus = await Bus.connect(nats_url, name="analytics-under-test")
    stopping = asyncio.Event()
    task = asyncio.create_task(consume(bus, Recorder(pool, load_prices(path)), stopping))
    yield
    stopping.set()
    await asyncio.wait_for(task, 10)
    await bus.close()


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLlmProvider]:
    """The workers' scripted LLM, answering REPLY, restored after the module."""
    provider = get_llm(LlmName.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply, delay = provider.reply, provider.delta_delay_s
    provider.reply, provider.delta_delay_s = REPLY, 0.0
    yield provider
    provider.reply, provider.delta_delay_s = reply, delay


def _tokens_sent(llm: ScriptedLlmProvider, runs_before: int) -> int:
    """The input tokens of the one model call made since ``runs_before``: words of every
    message the model received, as the scripted model counts tokens."""
    runs = llm.runs[runs_before:]
    assert len(runs) == 1, "one model call per turn"
    return sum(len(message.content.split()) for message in runs[0].messages)


async def _spoken(call: Call, llm: ScriptedLlmProvider, turn_id: int, frames: int) -> Turn:
    runs = len(llm.runs)
    await call.send_json({"type": "audio_start"})  # push-to-talk: every frame is speech
    await call.say(silence(frames * FRAME_MS), realtime=False)
    await call.send_json({"type": "audio_stop"})
    await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn_id)
    return Turn(turn_id, _tokens_sent(llm, runs), audio_ms=frames * FRAME_MS)


async def _typed(call: Call, llm: ScriptedLlmProvider, turn_id: int) -> Turn:
    runs = len(llm.runs)
    await call.send_json({"type": "text_message", "text": TYPED})
    await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn_id)
    return Turn(turn_id, _tokens_sent(llm, runs))


def _client_latency(call: Call, turn_id: int) -> dict[str, float | None]:
    """The turn's stages from every ``metrics`` event the client got (each merges more)."""
    stages: dict[str, float | None] = {}
    for event in call.events("metrics"):
        data = event["data"]
        if data["turn_id"] == turn_id:
            stages.update({k: v for k, v in data.items() if k != "turn_id" and v is not None})
    return stages


async def _end(client: httpx.AsyncClient, sid: str, headers: dict[str, str]) -> float:
    response = await client.post(f"/api/v1/sessions/{sid}/end", headers=headers)
    response.raise_for_status()
    duration: float = response.json()["duration_seconds"]
    return duration


async def _stored(pool: asyncpg.Pool, sid: str, turns: list[Turn]) -> None:
    """Wait until analytics stored every fact of the session, and its summary."""
    spoken = sum(t.audio_ms is not None for t in turns)
    usage_rows = 3 * len(turns) + spoken  # llm in + out and tts per turn, stt per utterance
    key = uuid.UUID(sid)

    async def done() -> bool:
        rows = await pool.fetchval("SELECT count(*) FROM voice_usage WHERE session_id=$1", key)
        summary = await pool.fetchval(
            "SELECT count(*) FROM voice_analytics WHERE session_id=$1", key
        )
        latency = {
            r["turn_id"]: {k: v for k, v in dict(r).items() if k != "turn_id" and v is not None}
            for r in await pool.fetch(
                "SELECT turn_id, stt_final_ms, llm_first_token_ms, tts_first_byte_ms,"
                " voice_to_voice_ms, interrupt_ms FROM voice_turn_latency WHERE session_id=$1",
                key,
            )
        }
        expected = {t.turn_id: t.latency for t in turns}
        return bool(rows == usage_rows and summary == 1 and latency == expected)

    await eventually(done, within_s=90)


@pytest.fixture(scope="module")
async def scenario(
    secured_platform: SecuredPlatform,
    pool: asyncpg.Pool,
    analytics: None,
    llm: ScriptedLlmProvider,
) -> Scenario:
    """Two sessions of one user (spoken, typed, spoken; then one spoken turn) and an empty
    session of another user."""
    user, other = f"payer-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    token = secured_platform.token(user)
    config = {**SCRIPTED, "interrupt_sensitivity": "low"}
    # Utterances of whole VAD frames (32 ms): the STT pads a released utterance's last
    # partial frame, and bills what it streamed.
    plans = [[("spoken", 48), ("typed", 0), ("spoken", 40)], [("spoken", 72)]]
    sessions: dict[str, list[Turn]] = {}
    durations: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as client:
        for plan in plans:
            call = await Call.start(secured_platform.url, token=token, **config)
            turns = []
            try:
                for turn_id, (kind, frames) in enumerate(plan, start=1):
                    if kind == "spoken":
                        turns.append(await _spoken(call, llm, turn_id, frames))
                    else:
                        turns.append(await _typed(call, llm, turn_id))
            finally:
                await call.close()
            for turn in turns:
                turn.latency = _client_latency(call, turn.turn_id)
            # The dialogue stores each user turn behind; the end counts them.
            sid = call.session_id

            async def all_turns_stored(sid: str = sid, count: int = len(turns)) -> bool:
                stored = await pool.fetchval(
                    "SELECT count(*) FROM voice_transcripts WHERE session_id=$1 AND role='user'",
                    uuid.UUID(sid),
                )
                return bool(stored == count)

            await eventually(all_turns_stored)
            durations[sid] = await _end(client, sid, secured_platform.headers(user))
            sessions[sid] = turns
            await _stored(pool, sid, turns)
        response = await client.post(
            "/api/v1/sessions", json=SCRIPTED, headers=secured_platform.headers(other)
        )
        response.raise_for_status()
        other_session = response.json()["id"]
        await _end(client, other_session, secured_platform.headers(other))
    return Scenario(user, sessions, durations, other, other_session)


def _as_lines(api_lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (x["service"], x["provider"], x["model"], x["unit"], x["quantity"], x["cost_usd"])
        for x in api_lines
    ]


def _approx(lines: list[Line]) -> list[Any]:
    return [(*line[:4], pytest.approx(float(line[4])), pytest.approx(float(line[5]), abs=1e-12))
            for line in lines]  # fmt: skip


async def _get(platform: SecuredPlatform, path: str, user: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        return await client.get(path, headers=platform.headers(user, **kw))


async def test_session_metrics_are_the_hand_computed_figures(
    secured_platform: SecuredPlatform, scenario: Scenario
) -> None:
    for sid, turns in scenario.sessions.items():
        response = await _get(secured_platform, f"/api/v1/sessions/{sid}/metrics", scenario.user)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["session_id"] == sid
        assert [t["turn_id"] for t in body["turns"]] == [t.turn_id for t in turns]
        for got, turn in zip(body["turns"], turns, strict=True):
            # The STT usage of each spoken turn is its own, also after a typed turn.
            assert _as_lines(got["usage"]) == _approx(turn.lines())
            assert got["cost_usd"] == pytest.approx(float(turn.cost), abs=1e-12)
            measured = {k: v for k, v in got["latency"].items() if v is not None}
            assert measured == turn.latency
            assert measured.keys() >= {"llm_first_token_ms", "tts_first_byte_ms"}
            assert ("stt_final_ms" in measured) == (turn.audio_ms is not None)
        total = sum((t.cost for t in turns), Decimal(0))
        assert body["total_cost_usd"] == pytest.approx(float(total), abs=1e-12)
        assert body["price_versions"] == [PRICE_VERSION]
        session_lines = sorted(line for t in turns for line in t.lines())
        merged: dict[tuple[Any, ...], tuple[Decimal, Decimal]] = {}
        for *key, quantity, cost in session_lines:
            q, c = merged.get(tuple(key), (Decimal(0), Decimal(0)))
            merged[tuple(key)] = (q + quantity, c + cost)
        expected = [(*key, q, c) for key, (q, c) in merged.items()]
        assert _as_lines(body["usage"]) == _approx(expected)


async def test_another_users_session_metrics_are_a_404(
    secured_platform: SecuredPlatform, scenario: Scenario
) -> None:
    theirs = await _get(
        secured_platform, f"/api/v1/sessions/{scenario.other_session}/metrics", scenario.user
    )
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "session_not_found"
    mine = next(iter(scenario.sessions))
    assert (
        await _get(secured_platform, f"/api/v1/sessions/{mine}/metrics", scenario.other_user)
    ).status_code == 404
    unknown = await _get(secured_platform, f"/api/v1/sessions/{uuid.uuid4()}/metrics", "x")
    assert unknown.status_code == 404


def _by_provider(scenario: Scenario) -> dict[tuple[str, str], dict[str, Any]]:
    turns = scenario.turns()
    sessions = len(scenario.sessions)
    spoken = [t for t in turns if t.audio_ms is not None]
    llm_cost = sum((line[5] for t in turns for line in t.lines()[:2]), Decimal(0))
    return {
        ("llm", "scripted"): {
            "sessions": sessions,
            "input_tokens": sum(t.input_tokens for t in turns),
            "output_tokens": sum(t.output_tokens for t in turns),
            "audio_seconds": 0,
            "characters": 0,
            "cost_usd": llm_cost,
        },
        ("stt", "scripted"): {
            "sessions": sessions,
            "audio_seconds": sum((t.audio_s for t in spoken), Decimal(0)),
            "characters": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": sum((t.audio_s * STT_PER_MINUTE / 60 for t in spoken), Decimal(0)),
        },
        ("tts", "scripted"): {
            "sessions": sessions,
            "characters": sum(t.characters for t in turns),
            "audio_seconds": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": sum((t.characters * TTS_PER_1K_CHARS / 1000 for t in turns), Decimal(0)),
        },
    }


def _figures(group: dict[str, Any]) -> dict[str, Any]:
    keys = ("sessions", "audio_seconds", "characters", "input_tokens", "output_tokens")
    return {k: group[k] for k in keys} | {"cost_usd": group["cost_usd"]}


def _expected_figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (pytest.approx(float(v), abs=1e-12) if k == "cost_usd" else pytest.approx(float(v)))
        for k, v in figures.items()
    }


async def test_usage_by_provider_and_by_day_are_the_hand_computed_figures(
    secured_platform: SecuredPlatform, scenario: Scenario
) -> None:
    expected = _by_provider(scenario)
    total = sum((t.cost for t in scenario.turns()), Decimal(0))

    response = await _get(secured_platform, "/api/v1/usage?group_by=provider", scenario.user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user_id"], body["group_by"]) == (scenario.user, "provider")
    got = {(g["service"], g["provider"]): _figures(g) for g in body["groups"]}
    assert got == {key: _expected_figures(v) for key, v in expected.items()}
    assert body["total_cost_usd"] == pytest.approx(float(total), abs=1e-12)
    assert body["price_versions"] == [PRICE_VERSION]
    # No start named: the 30 days before the end.
    end = datetime.fromisoformat(body["to"])
    assert datetime.fromisoformat(body["from"]) == end - timedelta(days=30)

    response = await _get(secured_platform, "/api/v1/usage?group_by=day", scenario.user)
    assert response.status_code == 200, response.text
    (day,) = response.json()["groups"]
    assert day["day"] == datetime.now(UTC).date().isoformat()
    assert (day["service"], day["provider"]) == (None, None)
    summed = {k: sum(v[k] for v in expected.values()) for k in expected["llm", "scripted"]}
    assert _figures(day) == _expected_figures({**summed, "sessions": len(scenario.sessions)})


async def test_usage_of_another_user_is_for_admins_only(
    secured_platform: SecuredPlatform, scenario: Scenario
) -> None:
    total = float(sum((t.cost for t in scenario.turns()), Decimal(0)))
    path = f"/api/v1/usage?user_id={scenario.user}"
    admin = await _get(secured_platform, path, "auditor", scopes=["parley:admin"])
    assert admin.status_code == 200, admin.text
    assert admin.json()["user_id"] == scenario.user
    assert admin.json()["total_cost_usd"] == pytest.approx(total, abs=1e-12)
    refused = await _get(secured_platform, path, scenario.other_user)
    assert refused.status_code == 403
    # The other user's own usage holds none of it.
    theirs = await _get(secured_platform, "/api/v1/usage", scenario.other_user)
    assert theirs.json()["groups"] == []
    assert theirs.json()["total_cost_usd"] == 0


async def test_a_window_before_the_calls_holds_nothing(
    secured_platform: SecuredPlatform, scenario: Scenario
) -> None:
    response = await _get(
        secured_platform,
        "/api/v1/usage?from=2020-01-01&to=2020-02-01T00:00:00Z&group_by=day",
        scenario.user,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["groups"], body["total_cost_usd"]) == ([], 0)
    assert body["from"].startswith("2020-01-01T00:00:00")  # a date without offset is UTC


@pytest.mark.parametrize(
    ("query", "code", "says"),
    [
        ("from=2026-02-01&to=2026-01-01", "bad_range", "is after to"),
        ("from=yesterday", "bad_date", "from must be a date (2026-12-01) or a date-time"),
        ("to=0.5", "bad_date", "to must be a date"),  # not a Unix time
        ("to=2026-12-01T10:00:00", "bad_date", "with its offset"),
        ("to=2026-13-01", "bad_date", "to is not a real date or time: month must be in 1..12"),
        ("from=2026-02-30T10:00:00Z", "bad_date", "day is out of range for month"),
        ("group_by=week", "validation_error", "provider"),
        ("from=0001-01-01T00:00:00%2B23:59", "bad_range", "outside the years"),
    ],
)
async def test_bad_usage_parameters_are_a_422_that_says_why(
    secured_platform: SecuredPlatform, query: str, code: str, says: str
) -> None:
    response = await _get(secured_platform, f"/api/v1/usage?{query}", "someone")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"] + json.dumps(error["details"])


async def test_s1s_two_queries_return_the_same_figures(
    pool: asyncpg.Pool, scenario: Scenario
) -> None:
    # S1's queries as its README writes them; only the literal 'user-123' is a parameter.
    sessions = await pool.fetchrow(
        """SELECT
             COUNT(*) as total_sessions,
             AVG(duration_seconds) as avg_duration,
             AVG(total_turns) as avg_turns,
             AVG(interruptions_count) as avg_interruptions
           FROM voice_sessions
           WHERE user_id = $1
             AND started_at > NOW() - INTERVAL '7 days'""",
        scenario.user,
    )
    assert sessions is not None
    counts = [len(turns) for turns in scenario.sessions.values()]
    assert sessions["total_sessions"] == len(counts)
    assert float(sessions["avg_turns"]) == sum(counts) / len(counts)
    assert sessions["avg_interruptions"] == 0
    durations = list(scenario.durations.values())
    assert sessions["avg_duration"] == pytest.approx(sum(durations) / len(durations))

    usage = await pool.fetch(
        """SELECT
             stt_provider,
             tts_provider,
             SUM(characters_transcribed) as total_transcribed,
             SUM(characters_synthesized) as total_synthesized,
             SUM(audio_seconds_processed) as total_audio_processed,
             SUM(estimated_cost_usd) as total_cost
           FROM voice_analytics
           WHERE user_id = $1
             AND recorded_at > NOW() - INTERVAL '30 days'
           GROUP BY stt_provider, tts_provider""",
        scenario.user,
    )
    turns = scenario.turns()
    assert [tuple(r) for r in usage] == [
        (
            "scripted",
            "scripted",
            sum(t.transcribed for t in turns),
            sum(t.characters for t in turns),
            pytest.approx(float(sum((t.audio_s for t in turns), Decimal(0)))),
            sum((t.cost for t in turns), Decimal(0)).quantize(Decimal("1e-10")),
        )
    ]
