"""Issue 10's NATS-cluster acceptance: three local nats-servers (routes, the events stream
replicated three times); one node is SIGKILLed mid-call and the call goes on, with no
durable event lost or stored twice.

The node killed is the gateway's; the analytics consumer is connected to it as well, and
the events stream's leader is moved onto it first, so that the kill is the worst single
failure: clients reconnect to other seeds while the stream elects a new leader, and the
durable publishes of the second turn meet that election. (The workers connect to a seed of
their own choosing; when it is the same node, they fail over too.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import ServiceUnavailableError
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bench.audio import silence, speak
from bench.call import Call
from parley_analytics.consumer import consume
from parley_analytics.recorder import Recorder
from parley_common.bus import Bus
from parley_common.contracts.events import (
    DurableEvent,
    LatencyRecorded,
    SessionEnded,
    SessionStarted,
    UsageRecorded,
    event_adapter,
)
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.subjects import EVENTS_STREAM
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_common.testing import eventually, serving
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.nats_cluster import ClusterNode, NatsCluster
from parley_launcher.embedded.process import free_port
from parley_llm.providers.registry import get_provider as get_llm
from parley_llm.providers.scripted import ScriptedLlmProvider

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
QUESTION = "What is the weather like in Paris today?"
# Every durable publisher of a session; none may give a fact up.
EVENT_QUEUES = ("gateway-events", "stt-events", "llm-events", "tts-events")
# What one answered scripted turn is billed for: one usage fact of each.
USAGE_KINDS = {("stt", "audio_seconds"), ("llm", "input_tokens"), ("llm", "output_tokens")}
USAGE_KINDS |= {("tts", "characters")}
STAGES = ("stt_final_ms", "llm_first_token_ms", "tts_first_byte_ms", "voice_to_voice_ms")
WorkersFactory = Callable[[str, asyncpg.Pool], contextlib.AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Stored:
    """One message of the events stream."""

    msg_id: str  # its publisher's Nats-Msg-Id
    event: DurableEvent


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsCluster]:
    """Three clustered nats-servers; every service here creates the events stream with
    three replicas, as PARLEY_EVENTS_REPLICAS says on a cluster."""
    monkeypatch.setenv("PARLEY_EVENTS_REPLICAS", "3")
    nodes = NatsCluster(tmp_path / "nats", size=3)
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The scripted models, with a one-second answer: each turn is heard to its end, so
    its length is test time."""
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    provider = get_llm(LlmName.SCRIPTED)
    assert isinstance(provider, ScriptedLlmProvider)
    reply, provider.reply = provider.reply, "It is sunny."
    yield
    provider.reply = reply


def _lost() -> float:
    return sum(
        REGISTRY.get_sample_value("parley_write_behind_lost_total", {"queue": queue}) or 0.0
        for queue in EVENT_QUEUES
    )


async def _stream_leader(bus: Bus) -> str | None:
    """The events stream's leader; None while an election runs (the API does not answer)."""
    try:
        info = await bus.js.stream_info(EVENTS_STREAM)
    except (NatsTimeoutError, ServiceUnavailableError):
        return None
    return info.cluster.leader if info.cluster else None


async def _led_by(bus: Bus, nodes: list[ClusterNode]) -> bool:
    """Whether one of ``nodes`` leads the events stream."""
    return await _stream_leader(bus) in {node.name for node in nodes}


async def _lead_on(bus: Bus, node: ClusterNode) -> None:
    """Have the events stream elect ``node`` its leader (the consumer's leader cannot be
    placed: JetStream ignores a preferred server for a consumer's step-down)."""
    if await _stream_leader(bus) == node.name:
        return
    request = json.dumps({"placement": {"preferred": node.name}}).encode()
    stepdown = f"$JS.API.STREAM.LEADER.STEPDOWN.{EVENTS_STREAM}"
    reply = json.loads((await bus.nc.request(stepdown, request, timeout=5)).data)
    assert reply.get("success"), reply

    async def moved() -> bool:
        return await _stream_leader(bus) == node.name

    await eventually(moved, within_s=15, every_s=0.1)


async def _stored(bus: Bus, session_id: str) -> list[Stored]:
    """Every message the events stream holds for ``session_id`` (the stream is this test's
    own, so nothing was ever removed from it)."""
    info = await bus.js.stream_info(EVENTS_STREAM)
    assert info.state.first_seq == 1
    stored = []
    for seq in range(1, info.state.last_seq + 1):
        raw = await bus.js.get_msg(EVENTS_STREAM, seq)
        assert raw.data is not None
        event = event_adapter.validate_json(raw.data)
        if event.session_id == session_id:
            msg_id = (raw.headers or {}).get("Nats-Msg-Id")
            assert msg_id, raw.headers
            stored.append(Stored(msg_id, event))
    return stored


def _port(bus: Bus) -> int:
    """The client port of the node ``bus`` is connected to."""
    url = bus.nc.connected_url
    assert url is not None
    assert url.port is not None
    return url.port


async def _clients(http: httpx.AsyncClient, node: ClusterNode) -> set[str]:
    """Names of the client connections ``node`` serves."""
    connz = (await http.get(f"http://127.0.0.1:{node.server.monitor_port}/connz")).json()
    return {conn.get("name", "") for conn in connz.get("connections") or []}


async def _turn(call: Call, question: bytes, after_turn: int, *, realtime: bool) -> int:
    """Speak ``question`` and wait until its answer has been heard; returns its turn id."""
    await call.say(question + silence(700), realtime=realtime)
    done = await call.wait_for(
        "response", lambda e: e["data"]["done"] and e["data"]["turn_id"] > after_turn, within_s=20
    )
    turn: int = done["data"]["turn_id"]
    await call.wait_for("audio_end", lambda e: e["data"]["turn_id"] == turn, within_s=20)
    await call.wait_for(
        "metrics",
        lambda e: e["data"]["turn_id"] == turn and e["data"].get("voice_to_voice_ms") is not None,
        within_s=20,
    )
    return turn


@dataclass
class Analytics:
    """The analytics consumer's connection, and the crashes its supervisor restarted."""

    bus: Bus
    crashes: list[BaseException] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _analytics(url: str, pool: asyncpg.Pool) -> AsyncIterator[Analytics]:
    """The analytics consumer on its own connection to ``url``'s seeds, in that order,
    restarted when it crashes as the service is (``parley up``'s supervisor, Kubernetes):
    its durable consumer resumes where the last ack left it."""
    analytics = Analytics(await Bus.connect(url, name="analytics-test", dont_randomize=True))
    stopping = asyncio.Event()

    async def supervised() -> None:
        while not stopping.is_set():
            try:
                await consume(analytics.bus, Recorder(pool), stopping)
            except Exception as exc:  # what ends the service's process
                log.warning("analytics consumer crashed; restarting it", exc_info=exc)
                analytics.crashes.append(exc)
                await asyncio.sleep(0.5)

    task = asyncio.create_task(supervised())
    try:
        yield analytics
    finally:
        stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        await analytics.bus.close()


async def _settled(pool: asyncpg.Pool, sid: uuid.UUID) -> bool:
    """Whether analytics has written everything two answered turns and an end produce."""
    summary = await pool.fetchval(
        "SELECT total_turns FROM voice_analytics WHERE session_id=$1", sid
    )
    usage = await pool.fetchval("SELECT count(*) FROM voice_usage WHERE session_id=$1", sid)
    complete = " AND ".join(f"{stage} IS NOT NULL" for stage in STAGES)
    latency = await pool.fetchval(
        f"SELECT count(*) FROM voice_turn_latency WHERE session_id=$1 AND {complete}", sid
    )
    return bool(summary == 2 and usage >= 2 * len(USAGE_KINDS) and latency == 2)


def _assert_stored_once(stored: list[Stored], turns: set[int]) -> None:
    """The stream holds each durable fact of the two turns, and of the session, once."""
    kinds = Counter(type(s.event) for s in stored)
    assert kinds[SessionStarted] == 1
    assert kinds[SessionEnded] == 1
    usage = Counter(
        (s.event.service, s.event.unit) for s in stored if isinstance(s.event, UsageRecorded)
    )
    assert usage == {kind: 2 for kind in USAGE_KINDS}
    reported = Counter(
        (s.event.turn_id, stage)
        for s in stored
        if isinstance(s.event, LatencyRecorded)
        for stage in STAGES
        if getattr(s.event.stages, stage) is not None
    )
    assert reported == {(turn, stage): 1 for turn in turns for stage in STAGES}


async def _assert_written_once(
    pool: asyncpg.Pool,
    sid: uuid.UUID,
    stored: list[Stored],
    turns: set[int],
    crashes: list[BaseException],
) -> None:
    """Analytics wrote each stored fact once: a usage row per usage message (by its message
    id), a latency row per turn with every stage, one summary of both turns.
    ``crashes`` (the consumer's, restarted) explain a shortfall."""
    usage = [(s.msg_id, s.event) for s in stored if isinstance(s.event, UsageRecorded)]
    rows = await pool.fetch("SELECT event_id FROM voice_usage WHERE session_id=$1", sid)
    written = sorted(r["event_id"] for r in rows)
    assert written == sorted(msg_id for msg_id, _ in usage), crashes
    latency = await pool.fetch("SELECT * FROM voice_turn_latency WHERE session_id=$1", sid)
    assert {r["turn_id"] for r in latency} == turns
    assert all(r[stage] is not None for r in latency for stage in STAGES)
    summary = await pool.fetchrow("SELECT * FROM voice_analytics WHERE session_id=$1", sid)
    assert summary is not None
    assert summary["total_turns"] == 2
    tts = sum(event.quantity for _, event in usage if event.service == "tts")
    assert summary["characters_synthesized"] == tts


async def test_a_node_killed_mid_call_loses_no_call_and_no_durable_fact(
    cluster: NatsCluster,
    database_url: str,
    pool: asyncpg.Pool,
    start_workers: WorkersFactory,
    scripted: None,
) -> None:
    question = await speak(QUESTION)
    lost_before = _lost()
    port = free_port()
    settings = GatewaySettings(
        nats_url=cluster.url, database_url=SecretStr(database_url), http_port=port
    )
    app = create_app(settings, AuthSettings.model_construct())
    async with (
        serving(app, port) as url,
        start_workers(cluster.url, pool),
        httpx.AsyncClient(timeout=10) as http,
    ):
        gateway_bus: Bus = app.state.gateway.runtime.bus
        victim = cluster.serving(_port(gateway_bus))
        survivors = [node for node in cluster.nodes if node is not victim]
        seeds = ",".join(node.url for node in [victim, *survivors])
        async with _analytics(seeds, pool) as analytics:
            info = await gateway_bus.js.stream_info(EVENTS_STREAM)
            assert info.config.num_replicas == 3
            await _lead_on(gateway_bus, victim)
            assert _port(analytics.bus) == victim.server.port

            call = await Call.start(url, **SCRIPTED, interrupt_sensitivity="high")
            try:
                first = await _turn(call, question, 0, realtime=False)
                on_victim = await _clients(http, victim)
                await asyncio.to_thread(cluster.kill, victim)
                # Spoken at once, in real time: the failover happens while the user talks.
                second = await _turn(call, question, first, realtime=True)
                # Hanging up while the stream still elects its leader (4 to 9 s after the
                # old one died) would leave the session's last facts only its reporters'
                # 3 s flush: a known limit (docs/nats-cluster.md), not what is tested here.
                await eventually(lambda: _led_by(gateway_bus, survivors), within_s=15)
            finally:
                await call.close()
            ended = await http.post(f"{url}/api/v1/sessions/{call.session_id}/end")
            assert ended.status_code == 200, ended.text
            sid = uuid.UUID(call.session_id)
            # Bounded; what is missing when it runs out is told by the assertions below.
            with contextlib.suppress(TimeoutError):
                await eventually(lambda: _settled(pool, sid), within_s=60, every_s=0.2)
            stored = await _stored(gateway_bus, call.session_id)

            # Every client of the dead node is on another one, the stream has a new leader.
            assert _port(gateway_bus) != victim.server.port
            assert _port(analytics.bus) != victim.server.port
            after = set().union(*[await _clients(http, node) for node in survivors])
            assert on_victim - {""} <= after, (on_victim, after)
            assert await _led_by(gateway_bus, survivors)

    turns = {first, second}
    assert len(turns) == 2
    assert _lost() == lost_before, "a durable publish was given up"
    _assert_stored_once(stored, turns)
    await _assert_written_once(pool, sid, stored, turns, analytics.crashes)
