"""S2's health and statistics routes: ``GET /api/v1/voice/health`` (can a voice
conversation be held now), ``GET /api/v1/ws/voice/health`` (the WebSocket side of this
gateway) and ``GET /api/v1/ws/voice/sessions/stats`` (sessions and worker load, admin only).

S2 says every endpoint requires a valid token, so unlike ``/health`` (for probes) these
need one. Workers are known from their heartbeats (``WorkerMonitor``): no request goes to a
worker except the cheap ``providers`` query of the voice health.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from starlette.requests import HTTPConnection

from parley_common.bus import MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import ProvidersReply, ProviderStatus
from parley_common.contracts.rest import (
    CheckResult,
    ServiceLoad,
    SessionStatsView,
    VoiceHealthView,
    VoiceServiceHealth,
    VoiceSocketHealthView,
    WorkerLoad,
)
from parley_common.observability.health import run_checks
from parley_gateway.auth import AdminUser, CurrentUser
from parley_gateway.routes.deps import Gateway, GatewayDep
from parley_gateway.sessions.failover import LiveWorker, WorkerMonitor
from parley_gateway.sessions.lifecycle import STREAMING_SERVICES

router = APIRouter(tags=["S2 compatibility"])

# A health answer must come fast even when a worker is busy: its providers are then unknown.
PROVIDERS_TIMEOUT_S = 0.5


def worker_monitor(conn: HTTPConnection) -> WorkerMonitor:
    """The gateway's heartbeat monitor, stored on the app by the lifespan."""
    monitor: WorkerMonitor = conn.app.state.worker_monitor
    return monitor


MonitorDep = Annotated[WorkerMonitor, Depends(worker_monitor)]


def _degraded(model: type[Any], what: str) -> dict[int | str, dict[str, Any]]:
    return {503: {"model": model, "description": f"Degraded: {what}"}}


async def _checks(gateway: Gateway) -> tuple[bool, dict[str, CheckResult]]:
    """The checks ``/health`` runs (the bus, the database)."""
    ok, results = await run_checks(gateway.runtime.checks)
    return ok, {name: "ok" if result == "ok" else "fail" for name, result in results.items()}


def _answer(ok: bool, view: VoiceHealthView | VoiceSocketHealthView) -> JSONResponse:
    return JSONResponse(view.model_dump(mode="json"), status_code=200 if ok else 503)


def _by_service(workers: list[LiveWorker]) -> dict[str, list[LiveWorker]]:
    grouped: dict[str, list[LiveWorker]] = {s: [] for s in STREAMING_SERVICES}
    for worker in workers:
        if worker.service in grouped:
            grouped[worker.service].append(worker)
    return grouped


async def _providers(gateway: Gateway, service: str, live: bool) -> list[ProviderStatus] | None:
    """What the service's workers say they can serve; None when none is live or none
    answers in time."""
    if not live:
        return None
    try:
        reply = await gateway.bus.request(
            subjects.query(service, "providers"),
            b"",
            MessageMeta(session_id=""),
            timeout=PROVIDERS_TIMEOUT_S,
        )
    except (NoRespondersError, NatsTimeoutError):
        return None
    return list(ProvidersReply.model_validate_json(reply.data).providers)


@router.get(
    "/api/v1/voice/health",
    response_model=VoiceHealthView,
    responses=_degraded(VoiceHealthView, "the bus, the database or a service without workers"),
)
async def voice_health(
    gateway: GatewayDep, monitor: MonitorDep, principal: CurrentUser
) -> JSONResponse:
    """200 when the bus and the database answer and each of stt, llm and tts has a live
    worker; 503 otherwise. Each service lists its providers' readiness as its workers
    report it."""
    _, checks = await _checks(gateway)
    grouped = _by_service(monitor.live_workers())
    found = await asyncio.gather(
        *(_providers(gateway, s, bool(grouped[s])) for s in STREAMING_SERVICES)
    )
    services: dict[str, VoiceServiceHealth] = {}
    for service, providers in zip(STREAMING_SERVICES, found, strict=True):
        status: CheckResult = "ok" if grouped[service] else "fail"
        checks[service] = status
        services[service] = VoiceServiceHealth(
            status=status, workers=len(grouped[service]), providers=providers
        )
    ok = all(result == "ok" for result in checks.values())
    view = VoiceHealthView(
        status="ok" if ok else "degraded",
        checks=checks,
        stt=services["stt"],
        llm=services["llm"],
        tts=services["tts"],
        timestamp=datetime.now(UTC),
    )
    return _answer(ok, view)


@router.get(
    "/api/v1/ws/voice/health",
    response_model=VoiceSocketHealthView,
    responses=_degraded(VoiceSocketHealthView, "the bus or the database"),
)
async def socket_health(gateway: GatewayDep, principal: CurrentUser) -> JSONResponse:
    """200 when the bus and the database a call needs answer, 503 otherwise; with the
    number of WebSockets open on this gateway."""
    ok, checks = await _checks(gateway)
    view = VoiceSocketHealthView(
        status="ok" if ok else "degraded",
        checks=checks,
        gateway=gateway.runtime.worker_id,
        active_connections=len(gateway.connections),
        timestamp=datetime.now(UTC),
    )
    return _answer(ok, view)


@router.get("/api/v1/ws/voice/sessions/stats", response_model=SessionStatsView)
async def session_stats(
    gateway: GatewayDep, monitor: MonitorDep, principal: AdminUser
) -> SessionStatsView:
    """Active sessions of every gateway (from the database), the WebSockets of this one,
    and each streaming service's live workers with the sessions each holds."""
    active = await gateway.pool.fetchval(
        "SELECT count(*) FROM voice_sessions WHERE status = 'active'"
    )
    grouped = _by_service(monitor.live_workers())
    load = {
        service: ServiceLoad(
            workers=[
                WorkerLoad(
                    worker_id=w.worker_id, sessions=w.sessions, last_seen_s=round(w.last_seen_s, 3)
                )
                for w in workers
            ],
            sessions=sum(w.sessions for w in workers),
        )
        for service, workers in grouped.items()
    }
    return SessionStatsView(
        active_sessions=active,
        websocket_connections=len(gateway.connections),
        gateway=gateway.runtime.worker_id,
        idle_timeout_s=gateway.settings.idle_timeout_s,
        stt=load["stt"],
        llm=load["llm"],
        tts=load["tts"],
        timestamp=datetime.now(UTC),
    )
