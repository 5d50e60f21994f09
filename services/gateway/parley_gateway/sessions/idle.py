"""Ends sessions nobody uses: no audio and no message for ``GATEWAY_IDLE_TIMEOUT_S``.

Every gateway runs a reaper. Each pass flushes this gateway's noted activity, then ends the
sessions the database says are idle, whichever gateway (if any) holds their WebSocket: a
session created over REST and never connected idles out like any other. Two reapers may
pick the same session; ending is idempotent, so only one of them releases its workers and
records the end. Last, each gateway closes its own sockets of sessions that have ended (by
its reaper, another's, or a REST call), with 4410 and the reason. The reaper that ends a
session marks it (``metadata.end_reason``) so the gateway holding its socket can say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from starlette.websockets import WebSocketState

from parley_common.contracts.ws import CLOSE_SESSION_ENDED
from parley_gateway.sessions.store import parse_session_id

if TYPE_CHECKING:
    from parley_gateway.routes.deps import Gateway

log = logging.getLogger(__name__)

# A pass runs every quarter of the timeout, and at least this often: activity noted here
# reaches the database within one pass, which other gateways' reapers read.
MAX_PASS_INTERVAL_S = 15.0
MIN_PASS_INTERVAL_S = 0.05
# Sessions ended per pass at most; the rest wait for the next pass.
BATCH = 100
# Shutdown writes the last activity, but not for longer than this.
FINAL_FLUSH_S = 2.0


def idle_reason(timeout_s: float) -> str:
    """The close reason of a socket whose session idled out (within WebSocket's 123 bytes)."""
    return f"session ended: idle, no audio or message for {timeout_s:g} s"


class IdleReaper:
    """Flushes activity and ends idle sessions, one pass every ``interval_s``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.timeout_s = gateway.settings.idle_timeout_s
        quarter = self.timeout_s / 4 if self.timeout_s > 0 else MAX_PASS_INTERVAL_S
        self.interval_s = max(MIN_PASS_INTERVAL_S, min(quarter, MAX_PASS_INTERVAL_S))

    async def run(self) -> None:
        """Pass after pass until cancelled. A failed pass is logged and the next one tries
        again: the reaper lives in the app's task group and must never take it down."""
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                try:
                    await self.sweep()
                except Exception:
                    log.exception("idle session pass failed")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINAL_FLUSH_S):
                    await self.gateway.activity.flush(self.gateway.pool)

    async def sweep(self) -> list[str]:
        """One pass; returns the ids of the idle sessions it ended."""
        await self.gateway.activity.flush(self.gateway.pool)
        ended = await self._end_idle() if self.timeout_s > 0 else []
        await self._close_ended_sockets()
        return ended

    async def _end_idle(self) -> list[str]:
        # Claimed first, with the reason and the timeout in the row: whichever gateway holds
        # the socket then tells its client why. SKIP LOCKED lets two reapers share a batch.
        rows = await self.gateway.pool.fetch(
            """UPDATE voice_sessions
               SET metadata = metadata || jsonb_build_object(
                   'end_reason', 'idle', 'idle_timeout_s', $1::float8)
               WHERE id IN (
                   SELECT id FROM voice_sessions
                   WHERE status = 'active'
                     AND last_activity_at < now() - make_interval(secs => $1::float8)
                   ORDER BY last_activity_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING id""",
            self.timeout_s,
            BATCH,
        )
        ended: list[str] = []
        for row in rows:
            sid = str(row["id"])
            try:
                await self.gateway.lifecycle.end(sid)
            except Exception:
                # One session failing to end must not keep the others alive.
                log.exception("idle session could not be ended", extra={"session_id": sid})
                continue
            self.gateway.audio_positions.forget(sid)
            log.info("idle session ended", extra={"session_id": sid})
            ended.append(sid)
        return ended

    async def _close_ended_sockets(self) -> None:
        open_here = {
            sid: ws
            for sid, ws in self.gateway.connections.items()
            if ws.application_state is WebSocketState.CONNECTED
        }
        ids = [u for sid in open_here if (u := parse_session_id(sid))]
        if not ids:
            return
        rows = await self.gateway.pool.fetch(
            """SELECT id, metadata->>'end_reason' AS end_reason,
                      (metadata->>'idle_timeout_s')::float8 AS idle_timeout_s
               FROM voice_sessions WHERE id = ANY($1::uuid[]) AND status = 'ended'""",
            ids,
        )
        for row in rows:
            sid = str(row["id"])
            if row["end_reason"] == "idle" and row["idle_timeout_s"] is not None:
                reason = idle_reason(row["idle_timeout_s"])
            else:
                reason = f"session {sid} has ended"
            with contextlib.suppress(RuntimeError):  # the client left meanwhile
                await open_here[sid].close(CLOSE_SESSION_ENDED, reason)
