"""One error shape for every failure: ``{"success": false, "error": {code, message, details}}``.

Domain code raises the common error tree (``parley_common.errors``); this module is the one
place that maps it to HTTP statuses (and, through :func:`ws_error`, to WebSocket events).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from parley_common.audio.decode import AUDIO_MISLABELLED, AUDIO_TOO_LARGE, AUDIO_UNSUPPORTED
from parley_common.contracts.rest import ErrorBody, ErrorDetail
from parley_common.db.pool import UNREACHABLE
from parley_common.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ParleyError,
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from parley_common.knowledge.extract import DOCUMENT_TOO_LARGE, DOCUMENT_UNSUPPORTED

log = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """The JSON response of an error."""
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


# Most specific first: the first class an error is an instance of decides its status.
_HTTP_STATUS: tuple[tuple[type[ParleyError], int], ...] = (
    (BadInputError, 422),
    (UnauthenticatedError, 401),
    (ForbiddenError, 403),
    (RateLimitedError, 429),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ProviderUnavailableError, 422),
    (ProviderRateLimitedError, 429),
    (ProviderAuthError, 502),
    (ProviderFailedError, 502),
    (ServiceUnavailableError, 503),
    (ParleyTimeoutError, 504),
)


# Codes more precise than their class: an upload too big, not audio (or a document type
# Parley reads), or not what it says.
_CODE_STATUS = {
    AUDIO_TOO_LARGE: 413,
    AUDIO_UNSUPPORTED: 415,
    AUDIO_MISLABELLED: 415,
    DOCUMENT_TOO_LARGE: 413,
    DOCUMENT_UNSUPPORTED: 415,
}


def http_status(exc: ParleyError) -> int:
    """The HTTP status of a Parley error."""
    if exc.code in _CODE_STATUS:
        return _CODE_STATUS[exc.code]
    return next((status for kind, status in _HTTP_STATUS if isinstance(exc, kind)), 500)


_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _clean(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Echoing ``input`` back could repeat a secret or a megabyte of text; the location and
    # the reason are what a client needs.
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to the common error shape."""

    @app.exception_handler(ParleyError)
    async def _parley(_: Request, exc: ParleyError) -> JSONResponse:
        response = error_response(http_status(exc), exc.code, exc.message, exc.details)
        retry_after = getattr(exc, "retry_after_s", None)
        if isinstance(exc, ProviderRateLimitedError | RateLimitedError) and retry_after:
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        if isinstance(exc, UnauthenticatedError):
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean(list(exc.errors()))
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "request body is not valid JSON", errors)
        return error_response(422, "validation_error", "request does not match the schema", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 wants every method of the resource; Starlette names only those of
            # the first route matching the path (GET and PUT are two routes).
            response.headers["Allow"] = ", ".join(_allowed_methods(app, request.scope))
        return response

    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        # The route needed PostgreSQL and could not reach it: a retry later works.
        log.warning("database unreachable", extra={"error": repr(exc)})
        return error_response(
            503, "database_unavailable", "the database is unavailable; try again shortly"
        )

    for unreachable in UNREACHABLE:
        app.add_exception_handler(unreachable, _database_down)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error")


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE and isinstance(route, APIRoute):
            methods |= route.methods or set()
    return sorted(methods)


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error answers any route may give, in the one error shape, for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Malformed JSON"),
    401: _documented("No bearer token, or one that is expired, forged or for another audience"),
    403: _documented("The token may not do this (another user's id, no admin scope)"),
    404: _documented("Not found (unknown session, provider or route)"),
    413: _documented("Body over GATEWAY_MAX_BODY_BYTES"),
    422: _documented("Unknown or wrong-typed fields, or an unavailable provider"),
    429: _documented("Parley's or a provider's rate limit; Retry-After says when to retry"),
    500: _documented("Internal error"),
    502: _documented("A provider failed or refused the credentials"),
    503: _documented("No worker of a service is available, or the database is unreachable"),
    504: _documented("A provider or service did not answer in time"),
}
