"""Work that stops when the HTTP client leaves: a REST synthesis or transcription whose
caller closed the connection is cancelled (its worker is told to stop), not finished for
nobody."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

from parley_common.errors import ParleyError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClientGoneError(ParleyError):
    """The client closed the connection before the answer was ready (nobody reads this
    error: it only ends the request)."""

    code = "client_closed_request"


async def _disconnected(request: Request) -> None:
    # The body was read before the route ran, so the next ASGI message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result; if the client disconnects first, ``work`` is cancelled and
    ClientGoneError raised."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            log.info("client left; its job was cancelled", extra={"path": request.url.path})
    if job.cancelled():
        raise ClientGoneError("the client closed the connection")
    return job.result()
