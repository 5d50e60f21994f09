"""Conversation memory of one session, kept in ``voice_transcripts`` so that any worker that
takes the session over continues the same conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from parley_common.contracts.bus import Role, Word
from parley_llm.providers.base import ChatMessage

DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a friendly voice assistant. You are speaking out loud, so answer in "
    "short, natural spoken sentences without lists, markup or emoji."
)


@dataclass
class Turn:
    """One message of the conversation."""

    turn_id: int
    role: Role
    text: str
    interrupted: bool = False


class ConversationMemory:
    """The turns of a session, in memory and in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, session_id: str, system_prompt: str | None) -> None:
        self.pool = pool
        self.session_id = uuid.UUID(session_id)
        self.system_prompt = system_prompt
        self.turns: list[Turn] = []
        self._heard: dict[int, int] = {}  # heard reports that came before their answer
        self._interrupted: set[int] = set()

    @property
    def last_turn_id(self) -> int:
        """The highest turn id so far (0 before the first turn)."""
        return max((t.turn_id for t in self.turns), default=0)

    async def load(self) -> None:
        """Read the stored turns (a worker taking over continues where the last one was)."""
        rows = await self.pool.fetch(
            """SELECT turn_id, role, text, interrupted FROM voice_transcripts
               WHERE session_id = $1 ORDER BY turn_id, CASE role WHEN 'user' THEN 0 ELSE 1 END""",
            self.session_id,
        )
        self.turns = [
            Turn(r["turn_id"], Role(r["role"]), r["text"], r["interrupted"]) for r in rows
        ]

    def messages(self) -> list[ChatMessage]:
        """The conversation as the model sees it, system prompt first."""
        system = DEFAULT_SYSTEM_PROMPT
        if self.system_prompt:
            system = f"{DEFAULT_SYSTEM_PROMPT}\n{self.system_prompt}"
        history = [
            ChatMessage(role=t.role.value, content=t.text)  # type: ignore[arg-type]
            for t in self.turns
            if t.text and t.role is not Role.SYSTEM
        ]
        return [ChatMessage(role="system", content=system), *history]

    async def add_user(
        self,
        turn_id: int,
        text: str,
        *,
        confidence: float | None = None,
        language: str | None = None,
        words: tuple[Word, ...] = (),
    ) -> None:
        """Record what the user said (or typed) for ``turn_id``."""
        self.turns.append(Turn(turn_id, Role.USER, text))
        now = datetime.now(UTC)
        await self.pool.execute(
            """INSERT INTO voice_transcripts (session_id, turn_id, role, text, confidence,
                   language, words, started_at, ended_at)
               VALUES ($1, $2, 'user', $3, $4, $5, $6, $7, $7)
               ON CONFLICT (session_id, turn_id, role) DO UPDATE SET text = EXCLUDED.text""",
            self.session_id,
            turn_id,
            text,
            confidence,
            language,
            [w.model_dump() for w in words] or None,
            now,
        )
        await self.pool.execute(
            "UPDATE voice_sessions SET total_turns = total_turns + 1, updated_at = now()"
            " WHERE id = $1",
            self.session_id,
        )

    async def add_assistant(self, turn_id: int, text: str, interrupted: bool) -> None:
        """Record the assistant's answer of ``turn_id`` as generated, cut to what the user
        heard if the gateway already reported it."""
        heard = self._heard.pop(turn_id, None)
        if heard is not None:
            text, interrupted = text[:heard].rstrip(), True
        self.turns.append(Turn(turn_id, Role.ASSISTANT, text, interrupted))
        await self.pool.execute(
            """INSERT INTO voice_transcripts (session_id, turn_id, role, text, interrupted,
                   started_at, ended_at)
               VALUES ($1, $2, 'assistant', $3, $4, now(), now())
               ON CONFLICT (session_id, turn_id, role) DO UPDATE SET
                   text = EXCLUDED.text, interrupted = EXCLUDED.interrupted""",
            self.session_id,
            turn_id,
            text,
            interrupted,
        )

    async def count_interruption(self, turn_id: int) -> None:
        """The user cut the assistant off in ``turn_id`` (counted once per turn)."""
        if turn_id in self._interrupted:
            return
        self._interrupted.add(turn_id)
        await self.pool.execute(
            "UPDATE voice_sessions SET interruptions_count = interruptions_count + 1,"
            " updated_at = now() WHERE id = $1",
            self.session_id,
        )

    async def keep_heard(self, turn_id: int, chars: int) -> None:
        """The user heard only the first ``chars`` characters of ``turn_id``: keep that part,
        marked interrupted (now, or when the answer is recorded if it is still being cut)."""
        turn = next(
            (t for t in self.turns if t.turn_id == turn_id and t.role is Role.ASSISTANT), None
        )
        if turn is None:
            self._heard[turn_id] = max(0, chars)
            return
        turn.text = turn.text[: max(0, chars)].rstrip()
        turn.interrupted = True
        await self.pool.execute(
            """UPDATE voice_transcripts SET text = $3, interrupted = true, ended_at = now()
               WHERE session_id = $1 AND turn_id = $2 AND role = 'assistant'""",
            self.session_id,
            turn_id,
            turn.text,
        )
