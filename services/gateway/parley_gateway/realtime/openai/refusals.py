"""Refusals told the OpenAI way: Parley's errors as OpenAI's ``error`` event, and the checks
of a client event's shape and audio that produce them."""

from __future__ import annotations

import base64
import binascii

from pydantic import ValidationError

from parley_common.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ParleyError,
    ProviderUnavailableError,
    RateLimitedError,
    UnauthenticatedError,
)
from parley_gateway.realtime.openai import wire

# Refusals of what the client asked (a provider it chose that cannot serve included).
_CLIENT_ERRORS = (
    BadInputError,
    ConflictError,
    NotFoundError,
    ForbiddenError,
    UnauthenticatedError,
    ProviderUnavailableError,
)
_UNKNOWN_TYPE = ("union_tag_invalid", "union_tag_not_found")


def error_event(exc: ParleyError, event_id: str | None = None, param: str | None = None) -> str:
    """OpenAI's ``error`` event for a refusal, as JSON: ``invalid_request_error`` for what
    the client asked, ``rate_limit_error`` over a limit, ``server_error`` otherwise."""
    kind = "invalid_request_error" if isinstance(exc, _CLIENT_ERRORS) else "server_error"
    if isinstance(exc, RateLimitedError):
        kind = "rate_limit_error"
    body = wire.ErrorBody(
        type=kind, code=exc.code, message=exc.message, param=param, event_id=event_id
    )
    return wire.ErrorEvent(error=body).model_dump_json()


def param_of(exc: ValidationError) -> str | None:
    """The dotted path of the first invalid field (OpenAI's ``param``)."""
    errors = exc.errors()
    return ".".join(str(p) for p in errors[0]["loc"]) if errors else None


def invalid(exc: ValidationError, where: str | None = None) -> BadInputError:
    """Why a client event (or the part of it at ``where``) was refused, never its content."""
    first = exc.errors()[0] if exc.errors() else None
    if first is not None and first["type"] in _UNKNOWN_TYPE:
        return BadInputError("unknown or missing event type", code="invalid_event_type")
    loc = where or (".".join(str(p) for p in first["loc"]) if first else "event")
    message = first["msg"] if first else "invalid event"
    return BadInputError(f"{message} at {loc}", code="invalid_event")


def decode_base64(text: str, where: str) -> bytes:
    """The bytes of a base64 field (a BadInputError naming ``where`` if it is not base64)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(f"{where} is not valid base64", code="invalid_audio") from exc
