"""Session rows in ``voice_sessions`` and the transcript in ``voice_transcripts``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from parley_common.contracts.bus import Role
from parley_common.contracts.rest import TranscriptEntry
from parley_common.contracts.session import SessionConfig, SessionStatus
from parley_common.contracts.summaries import SessionSummary
from parley_common.errors import RateLimitedError
from parley_gateway.sessions.summaries import summary_of

# A session slot frees when the user ends a session or it idles out; a client told to come
# back sooner would only be refused again.
SESSION_CAP_RETRY_S = 30.0


@dataclass(frozen=True)
class SessionRecord:
    """A session as stored."""

    id: str
    user_id: str
    chatbot_id: str | None
    status: SessionStatus
    config: SessionConfig
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float | None
    total_turns: int
    interruptions_count: int
    summary: SessionSummary | None = None  # written by the dialogue service once it ended

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> SessionRecord:
        """Build from a ``voice_sessions`` row."""
        return cls(
            id=str(row["id"]),
            user_id=row["user_id"],
            chatbot_id=row["chatbot_id"],
            status=SessionStatus(row["status"]),
            config=SessionConfig.model_validate(row["config"]),
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            duration_seconds=row["duration_seconds"],
            total_turns=row["total_turns"],
            interruptions_count=row["interruptions_count"],
            summary=summary_of(row),
        )


def parse_session_id(raw: str) -> uuid.UUID | None:
    """The UUID of a session id from a URL, or None when it cannot be one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


class SessionStore:
    """Queries on sessions and transcripts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self,
        user_id: str,
        chatbot_id: str | None,
        config: SessionConfig,
        max_active: int | None = None,
    ) -> SessionRecord:
        """Insert a new active session. With ``max_active``, a user who already has that many
        active sessions gets a RateLimitedError; the count and the insert hold a per-user
        lock, so concurrent starts through several gateways cannot pass it together."""
        async with self.pool.acquire() as conn, conn.transaction():
            if max_active is not None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('sessions:' || $1, 0))",
                    user_id,
                )
                active = await conn.fetchval(
                    "SELECT count(*) FROM voice_sessions WHERE user_id = $1 AND status = 'active'",
                    user_id,
                )
                if active >= max_active:
                    raise RateLimitedError(
                        f"{active} sessions are active, the most one user may have at once;"
                        " end one to start another",
                        code="too_many_sessions",
                        retry_after_s=SESSION_CAP_RETRY_S,
                    )
            row = await conn.fetchrow(
                """INSERT INTO voice_sessions (id, user_id, chatbot_id, config, stt_provider,
                       llm_provider, tts_provider, voice, language, response_style,
                       interrupt_sensitivity)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   RETURNING *""",
                uuid.uuid4(),
                user_id,
                chatbot_id,
                config.model_dump(mode="json"),
                config.stt_provider.value,
                config.llm_provider.value,
                config.tts_provider.value,
                config.voice,
                config.language,
                config.response_style.value,
                config.interrupt_sensitivity.value,
            )
        assert row is not None
        return SessionRecord.from_row(row)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None if there is no such session."""
        sid = parse_session_id(session_id)
        if sid is None:
            return None
        row = await self.pool.fetchrow("SELECT * FROM voice_sessions WHERE id = $1", sid)
        return SessionRecord.from_row(row) if row else None

    async def end(self, session_id: str) -> tuple[SessionRecord, bool] | None:
        """Mark the session ended with its duration and counts from the transcript.

        Returns the record and whether this call ended it (False: it was already ended);
        None if there is no such session.
        """
        sid = parse_session_id(session_id)
        if sid is None:
            return None
        row = await self.pool.fetchrow(
            """UPDATE voice_sessions s SET
                   status = 'ended',
                   ended_at = now(),
                   duration_seconds = EXTRACT(EPOCH FROM (now() - s.started_at)),
                   total_turns = GREATEST(s.total_turns, (
                       SELECT count(*) FROM voice_transcripts t
                       WHERE t.session_id = s.id AND t.role = 'user')),
                   interruptions_count = GREATEST(s.interruptions_count, (
                       SELECT count(*) FROM voice_transcripts t
                       WHERE t.session_id = s.id AND t.interrupted)),
                   updated_at = now()
               WHERE s.id = $1 AND s.status = 'active'
               RETURNING *""",
            sid,
        )
        if row is not None:
            return SessionRecord.from_row(row), True
        existing = await self.get(session_id)
        return (existing, False) if existing else None

    async def reopen(self, session_id: str) -> SessionRecord | None:
        """Make an ended session active again (a conversation continued); None when it is
        not ended (or does not exist). Its turns and totals stay; its end is forgotten."""
        sid = parse_session_id(session_id)
        if sid is None:
            return None
        row = await self.pool.fetchrow(
            """UPDATE voice_sessions SET
                   status = 'active', ended_at = NULL, duration_seconds = NULL,
                   last_activity_at = now(),
                   metadata = metadata - 'end_reason' - 'idle_timeout_s',
                   updated_at = now()
               WHERE id = $1 AND status = 'ended'
               RETURNING *""",
            sid,
        )
        return SessionRecord.from_row(row) if row else None

    async def transcript(self, session_id: str) -> list[TranscriptEntry]:
        """Every stored turn of the session, in order."""
        sid = parse_session_id(session_id)
        if sid is None:
            return []
        rows = await self.pool.fetch(
            f"""SELECT turn_id, role, text, confidence, language, interrupted, started_at,
                      ended_at, emotion, sources, {_TOOL_CALLS}
               FROM voice_transcripts t WHERE session_id = $1
               ORDER BY turn_id, CASE role WHEN 'user' THEN 0 ELSE 1 END, id""",
            sid,
        )
        return [_entry(dict(r)) for r in rows]


# An answer's tool calls (voice_tool_calls), in the order they were made.
_TOOL_CALLS = """(SELECT COALESCE(jsonb_agg(jsonb_build_object('name', c.name,
       'arguments', c.arguments, 'status', c.status, 'result', c.result,
       'duration_ms', c.duration_ms) ORDER BY c.id), '[]'::jsonb)
   FROM voice_tool_calls c WHERE t.role = 'assistant' AND c.session_id = t.session_id
       AND c.turn_id = t.turn_id) AS tool_calls"""


def _entry(row: dict[str, Any]) -> TranscriptEntry:
    return TranscriptEntry(
        turn_id=row["turn_id"],
        role=Role(row["role"]),
        text=row["text"],
        confidence=row["confidence"],
        language=row["language"],
        interrupted=row["interrupted"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        sources=row["sources"] or [],
        emotion=row["emotion"],
        tool_calls=row["tool_calls"],
    )
