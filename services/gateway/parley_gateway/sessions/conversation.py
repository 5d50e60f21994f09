"""S2's conversations are Parley sessions: a ``conversation_id`` is a session id.

A voice chat (REST) or an S2 WebSocket without one starts a session for the chatbot; with
one, it continues that session, resumed if it had ended, so the conversation's memory (its
transcript) is the same whichever way the user speaks or types.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from parley_common.contracts.rest import VoiceConfigView
from parley_common.contracts.session import CreateSessionRequest
from parley_common.errors import BadInputError, ConflictError, NotFoundError
from parley_common.tokens import Principal
from parley_gateway.auth import acting_user
from parley_gateway.realtime.client import describe
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.store import SessionRecord


async def open_conversation(
    gateway: Gateway,
    principal: Principal,
    chatbot_id: str,
    conversation_id: str | None,
    options: dict[str, Any] | None = None,
) -> SessionRecord:
    """The caller's conversation with ``chatbot_id``: a new session (``options`` are its
    session options, the chatbot's voice configuration fills in the rest), or the session
    ``conversation_id``, which must be the caller's and the chatbot's (NotFoundError), and
    whose options cannot change midway (ConflictError)."""
    options = options or {}
    if conversation_id is None:
        return await gateway.lifecycle.start(_request(principal, chatbot_id, options), principal)
    record = await gateway.store.get(conversation_id)
    if record is None or not principal.owns(record.user_id) or record.chatbot_id != chatbot_id:
        raise NotFoundError(
            f"conversation {conversation_id} of chatbot {chatbot_id} does not exist",
            code="conversation_not_found",
        )
    changed = sorted(k for k, v in options.items() if getattr(record.config, k) != v)
    if changed:
        raise ConflictError(
            f"{', '.join(changed)} cannot change within a conversation; start a new one",
            code="conversation_config_fixed",
        )
    return await gateway.lifecycle.resume(record)


async def chatbot_voice(gateway: Gateway, principal: Principal, chatbot_id: str) -> VoiceConfigView:
    """The chatbot's stored voice configuration, or the defaults when it has none (a
    NotFoundError when it is another user's chatbot)."""
    stored = await gateway.lifecycle.voice_configs.get(chatbot_id, principal)
    return stored or VoiceConfigView(chatbot_id=chatbot_id)


def _request(
    principal: Principal, chatbot_id: str, options: dict[str, Any]
) -> CreateSessionRequest:
    fields: dict[str, Any] = {**options, "chatbot_id": chatbot_id}
    user = acting_user(principal, None)
    if user is not None:
        fields["user_id"] = user
    try:
        return CreateSessionRequest.model_validate(fields)
    except ValidationError as exc:
        raise BadInputError(f"the session options are not valid: {describe(exc)}") from exc
