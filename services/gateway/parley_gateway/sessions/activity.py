"""When sessions were last used: noted in memory where a client's audio and messages
arrive, written to ``voice_sessions.last_activity_at`` in one batch per flush.

Noting is a set insertion (audio frames arrive fifty times a second per session; none may
wait for the database). A flush stamps every session noted since the last one with the
database's ``now()``: never earlier than the activity itself, and one clock for every
replica, so that the idle reaper of any gateway compares like with like.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable

import asyncpg

from parley_gateway.sessions.store import parse_session_id

log = logging.getLogger(__name__)


class SessionActivity:
    """The sessions used since the last flush."""

    def __init__(self) -> None:
        self._touched: set[str] = set()

    @property
    def pending(self) -> frozenset[str]:
        """Sessions noted but not yet flushed."""
        return frozenset(self._touched)

    def note(self, session_id: str) -> None:
        """``session_id`` was used just now."""
        self._touched.add(session_id)

    def noter(self, session_id: str) -> Callable[[], None]:
        """A callback noting ``session_id`` (for one client connection)."""
        return functools.partial(self.note, session_id)

    async def flush(self, pool: asyncpg.Pool) -> int:
        """Write the noted sessions' activity; returns how many were written. On a database
        error they stay noted for the next flush."""
        if not self._touched:
            return 0
        touched, self._touched = self._touched, set()
        ids: list[uuid.UUID] = [sid for raw in touched if (sid := parse_session_id(raw))]
        try:
            # A reaper's claim that lost the race with this activity (its end failed) is
            # withdrawn, so that a later end is not reported as idle.
            await pool.execute(
                """UPDATE voice_sessions
                   SET last_activity_at = now(),
                       metadata = metadata - 'end_reason' - 'idle_timeout_s'
                   WHERE id = ANY($1::uuid[]) AND status = 'active'""",
                ids,
            )
        except BaseException:
            self._touched |= touched
            raise
        return len(ids)
