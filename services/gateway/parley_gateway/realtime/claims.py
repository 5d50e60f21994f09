"""One connection per session across gateway processes.

Within one process, ``connected`` closes the older socket of a session itself. Several
gateway processes (``parley up --scale gateway=N``, one port shared) do not see each other's
sockets, so each connection is also announced on the session's connection subject: the
process holding an older connection of the session closes it as replaced, exactly as one
process does. Two connections that race are ordered by when they were claimed (then by id),
so exactly one of them stays.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from pydantic import BaseModel, ConfigDict

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects

log = logging.getLogger(__name__)


class ConnectionClaim(BaseModel):
    """A gateway process took a client connection of a session."""

    model_config = ConfigDict(frozen=True)

    connection_id: str
    at: float  # wall-clock time of the claim: processes on other machines compare it

    def newer_than(self, other: ConnectionClaim) -> bool:
        """Whether this claim wins over ``other``."""
        return (self.at, self.connection_id) > (other.at, other.connection_id)


@contextlib.asynccontextmanager
async def claimed(
    bus: Bus, session_id: str, replaced: Callable[[], Awaitable[None]]
) -> AsyncIterator[ConnectionClaim]:
    """Claim ``session_id``'s connection for the block; a newer claim from any process
    calls ``replaced`` (once), which closes this connection."""
    mine = ConnectionClaim(connection_id=uuid.uuid4().hex, at=time.time())
    meta = MessageMeta(session_id=session_id)
    lost = False

    async def on_claim(msg: Received) -> None:
        nonlocal lost
        other = ConnectionClaim.model_validate_json(msg.data)
        if lost or other.connection_id == mine.connection_id or not other.newer_than(mine):
            return
        lost = True
        log.info("connection replaced by a newer one", extra={"session_id": session_id})
        await replaced()

    subject = subjects.connection(session_id)
    # Subscribed before claiming: a claim from elsewhere right after ours is not missed.
    sub = await bus.subscribe(subject, on_claim)
    try:
        await bus.publish(subject, mine, meta)
        yield mine
    finally:
        with contextlib.suppress(Exception):  # the bus may be closing with the gateway
            await sub.unsubscribe()
