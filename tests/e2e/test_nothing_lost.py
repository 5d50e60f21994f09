"""Issue 10's "nothing lost": during 20 concurrent calls, the analytics service is killed
(SIGKILL) for a minute, or PostgreSQL is stopped for a minute; once it is back, every durable
event published to the stream is in the database exactly once, and (PostgreSQL) every
transcript row the dialogue workers wrote behind is there too.

Each test runs its own NATS and PostgreSQL (the PostgreSQL one is stopped and started again,
which the session-wide fixtures must not be), a gateway and the in-process STT, dialogue and
TTS workers with the scripted doubles, and analytics as its own process, as deployed. What
was published is read back from the stream itself, message by message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bench.audio import silence, speak
from bench.call import Call
from parley_analytics.consumer import DURABLE
from parley_common.bus import Bus, MessageMeta
from parley_common.contracts.events import (
    DurableEvent,
    ErrorRecorded,
    LatencyRecorded,
    ProviderSwitched,
    SessionEnded,
    SessionStarted,
    UsageRecorded,
    event_adapter,
)
from parley_common.contracts.session import LlmProvider
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.db.migrate import migrate
from parley_common.db.pool import create_pool
from parley_common.testing import PollCheck, eventually, serving
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.postgres_server import EmbeddedPostgres
from parley_launcher.embedded.process import free_port
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# How long the analytics service, or PostgreSQL, stays down: what the issue asks.
OUTAGE_S = 60.0
CALLS = 20
TURNS = 3
SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
QUESTION = "What is the weather like in Paris today?"
REPLY = "Noted, thank you."  # short: about a second of scripted speech per turn
# Bounds of every wait, generous for a busy two-core machine; none is asserted as a latency.
START_S = 90.0
TURN_S = 60.0
CALLS_DONE_S = 240.0
CATCH_UP_S = 300.0
# A session summary's average of each latency stage.
AVERAGES = {
    "stt_final_ms": "avg_stt_latency_ms",
    "llm_first_token_ms": "avg_llm_first_token_ms",
    "tts_first_byte_ms": "avg_tts_first_byte_ms",
    "voice_to_voice_ms": "avg_voice_to_voice_ms",
}

WorkersFactory = Callable[[str, asyncpg.Pool], contextlib.AbstractAsyncContextManager[None]]


async def _wait(check: PollCheck, within_s: float, what: str, every_s: float = 0.25) -> None:
    """``eventually``, failing with what was awaited."""
    try:
        await eventually(check, within_s=within_s, every_s=every_s)
    except TimeoutError:
        raise AssertionError(f"not within {within_s:g} s: {what}") from None


@dataclass
class Analytics:
    """``python -m parley_analytics`` as its own process, started, killed and started again."""

    env: dict[str, str]
    cwd: Path
    log: Path
    port: int
    proc: asyncio.subprocess.Process | None = None

    async def start(self, bus: Bus) -> None:
        """Start it and wait until it is healthy and its durable consumer exists."""
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "parley_analytics",
                env=self.env,
                cwd=self.cwd,  # no .env there: only this environment counts
                stdout=out,
                stderr=out,
            )

        async def ready() -> bool:
            self.check_alive()
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    health = await http.get(f"http://127.0.0.1:{self.port}/health")
                await bus.js.consumer_info(EVENTS_STREAM, DURABLE)
            except (httpx.HTTPError, nats.errors.Error):
                return False
            return health.status_code == 200

        await _wait(ready, START_S, "analytics healthy, its consumer created")

    def check_alive(self) -> None:
        """Fail with its log if it exited."""
        if self.proc is not None and self.proc.returncode is not None:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"analytics exited with {self.proc.returncode}:\n{tail}")

    async def kill(self) -> None:
        """SIGKILL: no drain, no ack of what it was storing."""
        assert self.proc is not None
        self.check_alive()
        self.proc.kill()
        await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it hangs."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            async with asyncio.timeout(15):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def _lost_writes() -> float:
    """Writes any write-behind queue of this process gave up on."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "parley_write_behind_lost"
        for sample in metric.samples
        if sample.name == "parley_write_behind_lost_total"
    )


@dataclass
class Stack:
    """A private Parley: NATS, PostgreSQL, gateway, in-process workers, analytics."""

    url: str
    pg: EmbeddedPostgres
    pool: asyncpg.Pool
    bus: Bus
    analytics: Analytics
    # Writes this process's write-behind queues had given up on before the test.
    lost_before: float = field(default_factory=_lost_writes)


@contextlib.contextmanager
def _short_replies() -> Iterator[None]:
    """The scripted model (enabled by the workers) answers ``REPLY``, restored after."""
    provider = get_llm(LlmProvider.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply = provider.reply
    provider.reply = REPLY
    try:
        yield
    finally:
        provider.reply = reply


@contextlib.asynccontextmanager
async def _stack(start_workers: WorkersFactory) -> AsyncIterator[Stack]:
    # Not under pytest's temporary root: another pytest run makes that private again, and
    # PostgreSQL runs as its own user.
    tmp = Path(tempfile.mkdtemp(prefix="parley-nothing-lost-"))
    nats = EmbeddedNats(tmp / "nats")
    pg = EmbeddedPostgres(tmp / "pg", fast=True)
    analytics: Analytics | None = None
    try:
        await asyncio.to_thread(nats.start)
        await asyncio.to_thread(pg.start)
        await migrate(pg.url)
        pool = await create_pool(pg.url, max_size=20)
        bus = await Bus.connect(nats.url, name="nothing-lost")
        try:
            await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
            port = free_port()
            gateway = GatewaySettings(
                nats_url=nats.url,
                database_url=SecretStr(pg.url),
                http_port=port,
                assign_timeout_s=10.0,  # twenty sessions start at once on two cores
                rate_limits_timeout_s=5.0,
            )
            env = {
                **os.environ,
                "NATS_URL": nats.url,
                "DATABASE_URL": pg.url,
                "ANALYTICS_HTTP_PORT": str(free_port()),
                "LOG_LEVEL": "WARNING",
            }
            analytics = Analytics(env, tmp, tmp / "analytics.log", int(env["ANALYTICS_HTTP_PORT"]))
            async with (
                start_workers(nats.url, pool),
                serving(create_app(gateway, AuthSettings.model_construct()), port) as url,
            ):
                await analytics.start(bus)
                with _short_replies():
                    yield Stack(url, pg, pool, bus, analytics)
        finally:
            if analytics is not None:
                await analytics.stop()
            await bus.close()
            await pool.close()
    finally:
        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(nats.stop)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Calls:
    """The test's calls and the turns they completed, with when each began and ended."""

    calls: list[Call]
    done: list[tuple[str, int, float, float]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def sessions(self) -> list[str]:
        return [c.session_id for c in self.calls]

    async def finished(self) -> None:
        """Wait (bounded) until every call has had all its turns."""
        async with asyncio.timeout(CALLS_DONE_S):
            await asyncio.gather(*self.tasks)


def _of_turn(turn_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda event: bool(event["data"]["turn_id"] == turn_id)


async def _converse(call: Call, question: bytes, calls: Calls) -> None:
    """``TURNS`` spoken questions, each answered in text and audio, played out in full."""
    for _ in range(TURNS):
        mark = len(call.log)
        began = time.monotonic()
        await call.say(question + silence(700), realtime=False)
        done = await call.wait_for(
            "response", lambda e: e["data"]["done"], within_s=TURN_S, after=mark
        )
        turn_id = done["data"]["turn_id"]
        assert done["data"]["text"] == REPLY
        await call.wait_for("audio_end", _of_turn(turn_id), within_s=TURN_S, after=mark)
        calls.done.append((call.session_id, turn_id, began, time.monotonic()))
        # Until the answer has played, a new question would be a barge-in.
        audio = call.audio(turn_id)
        assert audio, f"no audio for turn {turn_id}"
        played_until = audio[0].at + sum(len(r.audio or b"") for r in audio) / 48_000
        await asyncio.sleep(max(0.0, played_until - time.perf_counter()) + 0.3)


@contextlib.asynccontextmanager
async def _calls_under_way(stack: Stack) -> AsyncIterator[Calls]:
    """``CALLS`` calls conversing, each in a task of its own, once they are in full swing
    and analytics has stored some of their events; on the way out (or a failure) every
    call is stopped and closed."""
    question = await speak(QUESTION)
    started = await asyncio.gather(
        *(Call.start(stack.url, **SCRIPTED, interrupt_sensitivity="high") for _ in range(CALLS)),
        return_exceptions=True,
    )
    calls = Calls([c for c in started if isinstance(c, Call)])
    try:
        for failed in started:
            if isinstance(failed, BaseException):
                raise failed
        calls.tasks = [asyncio.create_task(_converse(c, question, calls)) for c in calls.calls]

        async def under_way() -> bool:
            return len(calls.done) >= CALLS // 2 and await _stored_some(stack.bus)

        await _wait(under_way, CALLS_DONE_S, "half the calls' first turns, events stored", 0.1)
        yield calls
    finally:
        for task in calls.tasks:
            task.cancel()
        await asyncio.gather(*calls.tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in calls.calls))


async def _end_sessions(url: str, session_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for sid in session_ids:
            ended = await http.post(f"/api/v1/sessions/{sid}/end")
            assert ended.status_code == 200, ended.text


async def _stored_some(bus: Bus) -> bool:
    info = await bus.js.consumer_info(EVENTS_STREAM, DURABLE)
    return bool(info.ack_floor and info.ack_floor.stream_seq)


async def _storing(bus: Bus, within_s: float = 10.0) -> int:
    """Best effort: wait (a little) for a moment when analytics holds events it has been
    given and not yet acknowledged, so that a kill then cuts into its work; returns how many
    it held at the last look."""
    deadline = time.monotonic() + within_s
    while True:
        held = (await bus.js.consumer_info(EVENTS_STREAM, DURABLE)).num_ack_pending
        if held or time.monotonic() > deadline:
            return int(held)
        await asyncio.sleep(0.002)


async def _last_seq(bus: Bus) -> int:
    return int((await bus.js.stream_info(EVENTS_STREAM)).state.last_seq)


async def _caught_up(stack: Stack) -> None:
    """Wait until analytics has stored (acked) everything in the stream."""

    async def done() -> bool:
        stack.analytics.check_alive()
        last = await _last_seq(stack.bus)
        info = await stack.bus.js.consumer_info(EVENTS_STREAM, DURABLE)
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        return info.num_pending == 0 and info.num_ack_pending == 0 and floor == last

    await _wait(done, CATCH_UP_S, "analytics caught up with the stream")


@dataclass
class Published:
    """What the stream holds for the test's sessions, as ``(event id, event, meta)``."""

    events: list[tuple[str, DurableEvent, MessageMeta]]

    def of(self, kind: type[Any]) -> list[tuple[str, Any, MessageMeta]]:
        return [e for e in self.events if isinstance(e[1], kind)]

    def counts(self) -> dict[str, int]:
        return dict(Counter(event.type for _, event, _ in self.events))


async def _published(bus: Bus, session_ids: set[str]) -> Published:
    last = await _last_seq(bus)
    events = []
    for seq in range(1, last + 1):
        msg = await bus.js.get_msg(EVENTS_STREAM, seq)
        event = event_adapter.validate_json(msg.data or b"")
        if event.session_id in session_ids:
            # The analytics consumer's id of a stored event: its publisher's message id.
            msg_id = (msg.headers or {}).get("Nats-Msg-Id")
            assert msg_id, f"event {seq} was published without a message id"
            events.append((msg_id, event, MessageMeta.from_headers(msg.headers)))
    return Published(events)


async def _check_stored_once(
    pool: asyncpg.Pool, sessions: list[str], pub: Published
) -> dict[str, int]:
    """Every durable event of ``sessions`` in ``pub`` is in the database exactly once;
    returns the rows counted."""
    ids = [uuid.UUID(s) for s in sessions]
    # Each session started and ended once, as the calls did.
    started = Counter(e.session_id for _, e, _ in pub.of(SessionStarted))
    ended = {e.session_id: e for _, e, _ in pub.of(SessionEnded)}
    assert started == Counter(sessions), "session.started published once per session"
    assert sorted(ended) == sorted(sessions), "session.ended published once per session"
    assert len(pub.of(SessionEnded)) == len(sessions)

    # Usage: one row per event, none missing, none extra, the same quantity.
    usage_rows = await pool.fetch(
        "SELECT event_id, session_id, service, unit, quantity FROM voice_usage"
        " WHERE session_id = ANY($1::uuid[])",
        ids,
    )
    stored_usage = Counter(r["event_id"] for r in usage_rows)
    assert all(n == 1 for n in stored_usage.values())
    published_usage = {eid: e for eid, e, _ in pub.of(UsageRecorded)}
    assert set(stored_usage) == set(published_usage), (
        f"missing {sorted(set(published_usage) - set(stored_usage))[:10]}, "
        f"extra {sorted(set(stored_usage) - set(published_usage))[:10]}"
    )
    for row in usage_rows:
        event = published_usage[row["event_id"]]
        assert (row["service"], row["unit"]) == (event.service, event.unit)
        assert row["quantity"] == pytest.approx(event.quantity)

    # Errors and provider switches: one row per event.
    error_ids = {eid for eid, _, _ in pub.of(ErrorRecorded) + pub.of(ProviderSwitched)}
    error_rows = await pool.fetch(
        "SELECT event_id FROM voice_errors WHERE session_id = ANY($1::uuid[])", ids
    )
    assert Counter(r["event_id"] for r in error_rows) == Counter(error_ids)

    # Latency: one row per (session, turn) published, with the stages the events carried.
    expected: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for _, event, _ in pub.of(LatencyRecorded):
        stages = event.stages.model_dump(exclude_none=True)
        expected[(event.session_id, event.turn_id)].update(stages)
    latency_rows = await pool.fetch(
        "SELECT * FROM voice_turn_latency WHERE session_id = ANY($1::uuid[])", ids
    )
    stored_latency = {(str(r["session_id"]), r["turn_id"]): r for r in latency_rows}
    assert len(stored_latency) == len(latency_rows)
    assert set(stored_latency) == set(expected)
    for key, stages in expected.items():
        row = stored_latency[key]
        for stage, value in stages.items():
            assert row[stage] == pytest.approx(value), (key, stage)

    # The summary: one row per ended session, with its totals and the usage it had.
    summaries = await pool.fetch(
        "SELECT * FROM voice_analytics WHERE session_id = ANY($1::uuid[])", ids
    )
    assert sorted(str(r["session_id"]) for r in summaries) == sorted(sessions)
    for row in summaries:
        sid = str(row["session_id"])
        end = ended[sid]
        assert row["duration_seconds"] == pytest.approx(end.duration_seconds)
        assert (row["total_turns"], row["interruptions_count"]) == (
            end.total_turns,
            end.interruptions_count,
        )
        usage = [e for _, e, _ in pub.of(UsageRecorded) if e.session_id == sid]

        def total(unit: str, events: list[UsageRecorded] = usage) -> float:
            return sum(e.quantity for e in events if e.unit == unit)

        assert row["llm_input_tokens"] == total("input_tokens")
        assert row["llm_output_tokens"] == total("output_tokens")
        assert row["characters_synthesized"] == total("characters")
        assert row["audio_seconds_processed"] == pytest.approx(total("audio_seconds"))
        # Its averages count every turn's latency, however late its event was stored.
        for stage, column in AVERAGES.items():
            values = [v[stage] for (s, _), v in expected.items() if s == sid and stage in v]
            average = statistics.mean(values) if values else None  # a session without turns
            assert row[column] == pytest.approx(average), (sid, column)
    statuses = await pool.fetch("SELECT status FROM voice_sessions WHERE id = ANY($1::uuid[])", ids)
    assert [r["status"] for r in statuses] == ["ended"] * len(sessions)
    return {
        "voice_usage": len(usage_rows),
        "voice_turn_latency": len(latency_rows),
        "voice_errors": len(error_rows),
        "voice_analytics": len(summaries),
    }


def _check_calls_did(pub: Published, calls: Calls) -> None:
    """The stream holds what the calls did: latency and usage for every answered turn."""
    answered = {(sid, turn_id) for sid, turn_id, _, _ in calls.done}
    assert len(answered) == CALLS * TURNS
    latency = {(e.session_id, e.turn_id) for _, e, _ in pub.of(LatencyRecorded)}
    assert answered <= latency
    llm = {(e.session_id, m.turn_id) for _, e, m in pub.of(UsageRecorded) if e.service == "llm"}
    tts = {(e.session_id, m.turn_id) for _, e, m in pub.of(UsageRecorded) if e.service == "tts"}
    assert answered <= llm
    assert answered <= tts
    stt = Counter(e.session_id for _, e, _ in pub.of(UsageRecorded) if e.service == "stt")
    assert all(stt[sid] >= TURNS for sid, _ in answered)


async def _check_all_stored(
    stack: Stack, sessions: list[str], calls: Calls
) -> tuple[Published, dict[str, int]]:
    """Once analytics has caught up: the stream holds what the calls did, and the database
    every event of ``sessions`` exactly once; no write-behind queue gave anything up."""
    pub = await _published(stack.bus, set(sessions))
    _check_calls_did(pub, calls)
    counted = await _check_stored_once(stack.pool, sessions, pub)
    assert _lost_writes() == stack.lost_before
    return pub, counted


def _report(name: str, **numbers: object) -> None:
    # Shown with -s, for the record of a run.
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


async def test_events_published_while_analytics_is_down_land_once(
    start_workers: WorkersFactory,
) -> None:
    async with _stack(start_workers) as stack:
        async with _calls_under_way(stack) as calls:
            unacked = await _storing(stack.bus)
            await stack.analytics.kill()
            seq_at_kill = await _last_seq(stack.bus)
            killed_at = time.monotonic()
            # The calls go on and end while analytics is down.
            await calls.finished()
            await _end_sessions(stack.url, calls.sessions)
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed_at)))
        outage_s = time.monotonic() - killed_at
        # Published while it was down: what it has to catch up on.
        seq_at_restart = await _last_seq(stack.bus)
        assert seq_at_restart > seq_at_kill
        restarted_at = time.monotonic()
        await stack.analytics.start(stack.bus)
        await _caught_up(stack)
        catch_up_s = time.monotonic() - restarted_at

        pub, counted = await _check_all_stored(stack, calls.sessions, calls)
        _report(
            "analytics down",
            outage_s=round(outage_s, 1),
            catch_up_s=round(catch_up_s, 1),
            published=len(pub.events),
            published_by_type=pub.counts(),
            stream_seq_at_kill=seq_at_kill,
            stream_seq_at_restart=seq_at_restart,
            delivered_unacked_at_kill=unacked,
            stored=counted,
        )


async def _new_session(url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/api/v1/sessions", json=SCRIPTED)
    return response.status_code, response.json()


async def _transcripts(pool: asyncpg.Pool, sessions: list[str]) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT session_id, turn_id, role, text FROM voice_transcripts"
            " WHERE session_id = ANY($1::uuid[])",
            [uuid.UUID(s) for s in sessions],
        )
    )


async def test_transcripts_and_events_survive_postgres_down(start_workers: WorkersFactory) -> None:
    async with _stack(start_workers) as stack:
        sessions: list[str] = []
        async with _calls_under_way(stack) as calls:
            sessions += calls.sessions
            await asyncio.to_thread(stack.pg.stop)
            stopped_at = time.monotonic()
            # A new session needs the database: refused with a clear 503, not a crash.
            status, body = await _new_session(stack.url)
            assert status == 503, body
            assert body["error"]["code"] == "database_unavailable"
            # Calls already running go on: audio and answers do not need the database.
            await calls.finished()
            # Turns asked and answered while it was down (all of them have ended by now).
            answered_in_outage = sum(1 for _, _, began, _ in calls.done if began > stopped_at)
            assert answered_in_outage > 0, "no turn was answered while PostgreSQL was down"
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
            await asyncio.to_thread(stack.pg.start)
            back_at = time.monotonic()
            outage_s = back_at - stopped_at

            # New sessions work again once the pools reconnect.
            async def recovered() -> bool:
                status, body = await _new_session(stack.url)
                assert status in (201, 503), body
                if status == 201:
                    sessions.append(body["id"])
                return status == 201

            await _wait(recovered, START_S, "a new session once PostgreSQL is back", 1.0)

            # Every row the dialogue workers wrote behind lands.
            async def flushed() -> bool:
                assert _lost_writes() == stack.lost_before, "a write-behind queue gave up"
                return len(await _transcripts(stack.pool, sessions)) >= CALLS * TURNS * 2

            await _wait(flushed, CATCH_UP_S, "every transcript row written", 0.5)
            flush_s = time.monotonic() - back_at
            await _end_sessions(stack.url, sessions)
        await _caught_up(stack)
        catch_up_s = time.monotonic() - back_at

        rows = await _transcripts(stack.pool, sessions)
        stored = Counter((str(r["session_id"]), r["turn_id"], r["role"]) for r in rows)
        answered = {(sid, turn_id) for sid, turn_id, _, _ in calls.done}
        expected = {(sid, t, role) for sid, t in answered for role in ("user", "assistant")}
        assert set(stored) == expected
        assert all(n == 1 for n in stored.values())
        for row in rows:
            assert row["text"] == ("hello there" if row["role"] == "user" else REPLY)
        # Each turn and interruption counted once, however often a write was retried.
        totals = await stack.pool.fetch(
            "SELECT total_turns, interruptions_count FROM voice_sessions"
            " WHERE id = ANY($1::uuid[])",
            [uuid.UUID(s) for s in calls.sessions],
        )
        counts = [(r["total_turns"], r["interruptions_count"]) for r in totals]
        assert counts == [(TURNS, 0)] * CALLS

        pub, counted = await _check_all_stored(stack, sessions, calls)
        _report(
            "postgres down",
            outage_s=round(outage_s, 1),
            turns_answered_during_outage=answered_in_outage,
            transcripts_flushed_s=round(flush_s, 1),
            events_caught_up_s=round(catch_up_s, 1),
            transcript_rows=len(rows),
            published=len(pub.events),
            published_by_type=pub.counts(),
            stored=counted,
        )
