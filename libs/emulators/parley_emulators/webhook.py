"""A chatbot's HTTP webhook tool, as a test serves it: every call recorded (JSON body and
headers), answered with ``result`` after ``delay_s``; a caller that gives up before then
(a barge-in, a timeout) is seen going away, ``closed_at`` marked on its record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from parley_emulators.base import EmulatorState, starlette_app
from parley_emulators.recording import record_json

__all__ = ["TOOL_PATH", "WebhookState", "app", "routes"]

TOOL_PATH = "/tool"


@dataclass
class WebhookState(EmulatorState):
    """The webhook's traffic and what it answers."""

    api_key: str = ""
    result: Any = field(default_factory=lambda: {"ok": True})
    status: int = 200
    delay_s: float = 0.0


async def _gone_within(request: Request, seconds: float) -> bool:
    """Whether the client disconnects in the next ``seconds`` (the body is already read,
    so the next ASGI message is the disconnect)."""
    try:
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


async def _call(state: WebhookState, request: Request) -> Response:
    recorded, _ = await record_json(state, request)
    if state.delay_s > 0 and await _gone_within(request, state.delay_s):
        state.mark_closed(recorded)
        return Response(status_code=499)
    return JSONResponse(state.result, status_code=state.status)


def routes(state: WebhookState) -> list[BaseRoute]:
    """``POST /tool`` served from ``state``."""

    async def call(request: Request) -> Response:
        return await _call(state, request)

    return [Route(TOOL_PATH, call, methods=["POST"])]


def app(state: WebhookState) -> Starlette:
    """An app serving only the webhook."""
    return starlette_app(routes(state))
