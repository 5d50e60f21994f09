"""``/api/v1/sessions``: the native session API."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from parley_common.contracts.rest import SessionView, TranscriptView
from parley_common.contracts.session import CreateSessionRequest
from parley_common.errors import NotFoundError
from parley_common.tokens import Principal
from parley_gateway.auth import CurrentUser, acting_user
from parley_gateway.limits.dependency import rate_limited
from parley_gateway.routes.deps import GatewayDep, v1_ws_path, ws_url
from parley_gateway.sessions.store import SessionRecord
from parley_gateway.sessions.summaries import regenerate

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
        summary=record.summary,
    )


async def load_session(gateway: GatewayDep, session_id: str, principal: Principal) -> SessionRecord:
    """The caller's session, or a 404 (also for another user's: its id is not confirmed)."""
    record = await gateway.store.get(session_id)
    if record is None or not principal.owns(record.user_id):
        raise NotFoundError(f"session {session_id} does not exist", code="session_not_found")
    return record


def as_caller(principal: Principal, body: CreateSessionRequest | None) -> CreateSessionRequest:
    """The request with its user set to the caller (a body naming another user is a 403)."""
    request = body or CreateSessionRequest()
    named = request.user_id if "user_id" in request.model_fields_set else None
    user = acting_user(principal, named)
    return request if user is None else request.model_copy(update={"user_id": user})


@router.post(
    "",
    status_code=201,
    response_model=SessionView,
    dependencies=[Depends(rate_limited("session_start"))],
)
async def create_session(
    request: Request,
    gateway: GatewayDep,
    principal: CurrentUser,
    body: CreateSessionRequest | None = None,
) -> SessionView:
    """Start a session; every field has a default, so an empty body is allowed. The user is
    the token's ``sub``."""
    record = await gateway.lifecycle.start(as_caller(principal, body), principal)
    return session_view(request, record)


@router.get("/{session_id}", response_model=SessionView)
async def get_session(
    request: Request, gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> SessionView:
    """A session with its status and totals."""
    return session_view(request, await load_session(gateway, session_id, principal))


@router.post("/{session_id}/end", response_model=SessionView)
async def end_session(
    request: Request, gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> SessionView:
    """End a session. Ending an ended session returns it unchanged."""
    await load_session(gateway, session_id, principal)
    record = await gateway.lifecycle.end(session_id)
    gateway.audio_positions.forget(session_id)
    return session_view(request, record)


@router.get("/{session_id}/transcript", response_model=TranscriptView)
async def get_transcript(
    gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> TranscriptView:
    """Every stored turn of the session."""
    record = await load_session(gateway, session_id, principal)
    entries = await gateway.store.transcript(record.id)
    return TranscriptView(session_id=record.id, entries=entries, summary=record.summary)


@router.post(
    "/{session_id}/summary",
    response_model=SessionView,
    dependencies=[Depends(rate_limited("chat"))],
)
async def regenerate_summary(
    request: Request, gateway: GatewayDep, principal: CurrentUser, session_id: str
) -> SessionView:
    """Write the session's title and summary again now (its model, its stored transcript),
    and return the session with them; a session without turns keeps none."""
    await load_session(gateway, session_id, principal)
    await regenerate(gateway.bus, session_id)
    return session_view(request, await load_session(gateway, session_id, principal))
