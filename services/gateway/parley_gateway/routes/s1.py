"""S1's ``/api/voice`` routes, as thin aliases with S1's exact shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic.alias_generators import to_camel

from parley_common.contracts.rest import (
    S1EndResponse,
    S1Session,
    S1SessionMetrics,
    S1StartResponse,
    S1TranscriptEntry,
    S1TranscriptResponse,
)
from parley_common.contracts.session import CreateSessionRequest
from parley_common.contracts.summaries import S1SessionSummary
from parley_gateway.auth import CurrentUser
from parley_gateway.limits.dependency import rate_limited
from parley_gateway.routes.deps import GatewayDep, ws_url
from parley_gateway.routes.sessions_v1 import as_caller, load_session

router = APIRouter(prefix="/api/voice", tags=["S1 compatibility"])


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(name): value for name, value in fields.items()}


def _dump(model: Any) -> dict[str, Any]:
    result: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return result


@router.post("/start", dependencies=[Depends(rate_limited("session_start"))])
async def start(
    request: Request,
    gateway: GatewayDep,
    principal: CurrentUser,
    body: CreateSessionRequest | None = None,
) -> dict[str, Any]:
    """``{"success": true, "session": {id, status, config, wsUrl}}``. ``userId`` must be
    the token's ``sub`` (it is filled from it when absent)."""
    record = await gateway.lifecycle.start(as_caller(principal, body), principal)
    session = S1Session(
        id=record.id,
        status=record.status,
        config=_camel(record.config.model_dump(mode="json")),
        ws_url=ws_url(request, f"/ws/voice/{record.id}"),
    )
    return _dump(S1StartResponse(session=session))


@router.get("/{session_id}/transcript")
async def transcript(
    gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> dict[str, Any]:
    """The conversation so far."""
    record = await load_session(gateway, session_id, principal)
    entries = [
        S1TranscriptEntry(
            turn_id=e.turn_id,
            role=e.role,
            text=e.text,
            confidence=e.confidence,
            interrupted=e.interrupted,
            timestamp=e.started_at,
            emotion=e.emotion,
        )
        for e in await gateway.store.transcript(record.id)
    ]
    summary = S1SessionSummary(**record.summary.model_dump()) if record.summary else None
    return _dump(S1TranscriptResponse(session_id=record.id, transcript=entries, summary=summary))


@router.post("/{session_id}/end")
async def end(gateway: GatewayDep, principal: CurrentUser, session_id: str) -> dict[str, Any]:
    """End the session and return its metrics."""
    await load_session(gateway, session_id, principal)
    record = await gateway.lifecycle.end(session_id)
    gateway.audio_positions.forget(session_id)
    metrics = S1SessionMetrics(
        duration_seconds=record.duration_seconds or 0.0,
        total_turns=record.total_turns,
        interruptions_count=record.interruptions_count,
    )
    return _dump(S1EndResponse(session_id=record.id, status=record.status, metrics=metrics))
