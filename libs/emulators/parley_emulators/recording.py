"""What the HTTP emulators share: recording a JSON request as it arrived, and answering an
HTTP fault in the provider's error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from parley_emulators.base import EmulatorState, Fault, Recorded

__all__ = ["fault_response", "record_json"]


async def record_json(state: EmulatorState, request: Request) -> tuple[Recorded, Any]:
    """Record ``request`` on ``state`` with its JSON body (None when it is not JSON)."""
    try:
        body: Any = json.loads(await request.body())
    except ValueError:
        body = None
    recorded = state.record(
        Recorded(
            method=request.method,
            path=request.url.path,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=body,
        )
    )
    return recorded, body


def fault_response(fault: Fault, error_body: Callable[[int], Any]) -> Response:
    """The answer to an HTTP fault: its own body, or the provider's body for its status."""
    body = fault.body if fault.body is not None else error_body(fault.status)
    return JSONResponse(body, status_code=fault.status, headers=fault.headers)
