"""``/api/v1/sessions``: the native session API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from parley_common.contracts.rest import SessionView, TranscriptView
from parley_common.contracts.session import CreateSessionRequest
from parley_common.errors import NotFoundError
from parley_gateway.routes.deps import GatewayDep, v1_ws_path, ws_url
from parley_gateway.sessions.store import SessionRecord

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


def session_view(request: Request, record: SessionRecord) -> SessionView:
    """The API representation of a stored session."""
    return SessionView(
        id=record.id,
        status=record.status,
        user_id=record.user_id,
        chatbot_id=record.chatbot_id,
        config=record.config,
        ws_url=ws_url(request, v1_ws_path(record)),
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_seconds=record.duration_seconds,
        total_turns=record.total_turns,
        interruptions_count=record.interruptions_count,
    )


async def load_session(gateway: GatewayDep, session_id: str) -> SessionRecord:
    """The session or a 404."""
    record = await gateway.store.get(session_id)
    if record is None:
        raise NotFoundError(f"session {session_id} does not exist", code="session_not_found")
    return record


@router.post("", status_code=201, response_model=SessionView)
async def create_session(
    request: Request, gateway: GatewayDep, body: CreateSessionRequest | None = None
) -> SessionView:
    """Start a session; every field has a default, so an empty body is allowed."""
    record = await gateway.lifecycle.start(body or CreateSessionRequest())
    return session_view(request, record)


@router.get("/{session_id}", response_model=SessionView)
async def get_session(request: Request, gateway: GatewayDep, session_id: str) -> SessionView:
    """A session with its status and totals."""
    return session_view(request, await load_session(gateway, session_id))


@router.post("/{session_id}/end", response_model=SessionView)
async def end_session(request: Request, gateway: GatewayDep, session_id: str) -> SessionView:
    """End a session. Ending an ended session returns it unchanged."""
    record = await gateway.lifecycle.end(session_id)
    gateway.audio_positions.forget(session_id)
    return session_view(request, record)


@router.get("/{session_id}/transcript", response_model=TranscriptView)
async def get_transcript(gateway: GatewayDep, session_id: str) -> TranscriptView:
    """Every stored turn of the session."""
    record = await load_session(gateway, session_id)
    return TranscriptView(session_id=record.id, entries=await gateway.store.transcript(record.id))
