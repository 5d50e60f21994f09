"""Conversation memory of one session, kept in ``voice_transcripts`` so that any worker that
takes the session over continues the same conversation.

Memory changes at once, in this process; the rows follow from a write-behind task in the
order the changes happened. A turn's answer and its cancellation therefore never wait on
PostgreSQL, and a database that is slow or down delays only the rows, which are retried
until it is back (an outage of any length, up to ``MAX_PENDING_WRITES`` rows a session).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import asyncpg

from parley_common.contracts.bus import Emotion, Role, Word
from parley_common.db.pool import UNREACHABLE
from parley_common.observability.metrics import DB_WRITE_SECONDS
from parley_common.write_behind import WriteBehind
from parley_llm.emotion_note import emotion_note
from parley_llm.languages import answer_in
from parley_llm.providers.base import ChatMessage
from parley_llm.tools.base import ToolCallRecord

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a friendly voice assistant. You are speaking out loud, so answer in "
    "short, natural spoken sentences without lists, markup or emoji."
)
# Messages the model sees (all of them are stored): bounds the prompt and this process's
# memory however long a call goes on.
CONTEXT_MESSAGES = 40
# Bookkeeping for turns older than this is dropped; reports about them come too late.
RECENT_TURNS = 4
WRITE_RETRIES = 5
WRITE_RETRY_DELAY_S = 0.2
FLUSH_TIMEOUT_S = 5.0
# While PostgreSQL is unreachable, writes wait (retried every few seconds at most) rather
# than being lost; this bounds how many one session holds meanwhile (three per turn).
MAX_PENDING_WRITES = 3000


@dataclass
class Turn:
    """One message of the conversation."""

    turn_id: int
    role: Role
    text: str
    interrupted: bool = False
    emotion: Emotion | None = None  # the user's tone, when the session detects it


_INSERT_USER = """INSERT INTO voice_transcripts (session_id, turn_id, role, text, confidence,
       language, words, emotion, started_at, ended_at)
   VALUES ($1, $2, 'user', $3, $4, $5, $6, $7, now(), now())
   ON CONFLICT (session_id, turn_id, role) DO UPDATE SET text = EXCLUDED.text"""
_COUNT_TURN = (
    "UPDATE voice_sessions SET total_turns = total_turns + 1, updated_at = now() WHERE id = $1"
)
# $5: the knowledge passages the answer was given from (NULL keeps what is stored).
_UPSERT_ASSISTANT = """INSERT INTO voice_transcripts (session_id, turn_id, role, text,
       interrupted, sources, started_at, ended_at)
   VALUES ($1, $2, 'assistant', $3, $4, $5, now(), now())
   ON CONFLICT (session_id, turn_id, role) DO UPDATE SET
       text = EXCLUDED.text, interrupted = EXCLUDED.interrupted,
       sources = COALESCE(EXCLUDED.sources, voice_transcripts.sources)"""
_INSERT_TOOL_CALL = """INSERT INTO voice_tool_calls (session_id, turn_id, call_id, name,
       arguments, status, result, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"""
_COUNT_INTERRUPTION = """UPDATE voice_sessions SET interruptions_count = interruptions_count + 1,
       updated_at = now() WHERE id = $1"""
_LOAD = """SELECT turn_id, role, text, interrupted FROM (
       SELECT turn_id, role, text, interrupted,
              CASE role WHEN 'user' THEN 0 ELSE 1 END AS rank
       FROM voice_transcripts WHERE session_id = $1
       ORDER BY turn_id DESC, rank DESC LIMIT $2) AS recent
   ORDER BY turn_id, rank"""
_LAST_TURN = "SELECT COALESCE(max(turn_id), 0) FROM voice_transcripts WHERE session_id = $1"


class ConversationMemory:
    """The recent turns of a session in memory; every turn in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, session_id: str, system_prompt: str | None) -> None:
        self.pool = pool
        self.session_id = uuid.UUID(session_id)
        self.system_prompt = system_prompt
        # The user's language, as the STT heard it in their latest spoken turn (None: unknown).
        self.language: str | None = None
        self.turns: deque[Turn] = deque(maxlen=CONTEXT_MESSAGES)
        self._last_turn_id = 0
        self._heard: dict[int, int] = {}  # heard reports that came before their answer
        self._interrupted: set[int] = set()
        # A speculative turn (the user may go on speaking): in memory for the prompt, its rows
        # held back until it commits; a discarded one leaves no trace.
        self._tentative: int | None = None
        self._held: list[tuple[str, tuple[Any, ...]]] = []
        self._discarded: int | None = None
        self._language_before: str | None = None
        # Counts the changes to turns already in the prompt (what the user heard of an
        # answer): a speculative answer started before one is out of date.
        self.revision = 0
        self._writes: WriteBehind[tuple[str, tuple[Any, ...]]] = WriteBehind(
            "conversation",
            self._execute,
            retries=WRITE_RETRIES,
            retry_delay_s=WRITE_RETRY_DELAY_S,
            flush_timeout_s=FLUSH_TIMEOUT_S,
            transient=UNREACHABLE,
            max_pending=MAX_PENDING_WRITES,
        )

    @property
    def last_turn_id(self) -> int:
        """The highest turn id so far (0 before the first turn)."""
        return self._last_turn_id

    @property
    def tracked_turns(self) -> int:
        """Per-turn bookkeeping entries held (bounded by RECENT_TURNS)."""
        return len(self._heard) + len(self._interrupted)

    @property
    def pending_writes(self) -> int:
        """Rows changed in memory and not yet written."""
        return self._writes.pending

    async def load(self) -> None:
        """Read the stored turns (a worker taking over continues where the last one was)."""
        rows = await self.pool.fetch(_LOAD, self.session_id, CONTEXT_MESSAGES)
        self.turns.clear()
        self.turns.extend(
            Turn(r["turn_id"], Role(r["role"]), r["text"], r["interrupted"]) for r in rows
        )
        self._last_turn_id = int(await self.pool.fetchval(_LAST_TURN, self.session_id))

    def messages(self) -> list[ChatMessage]:
        """The conversation as the model sees it, system prompt first."""
        system = DEFAULT_SYSTEM_PROMPT
        if self.system_prompt:
            system = f"{DEFAULT_SYSTEM_PROMPT}\n{self.system_prompt}"
        system = f"{system}\n{answer_in(self.language)}"
        history = [
            ChatMessage(role=t.role.value, content=t.text)  # type: ignore[arg-type]
            for t in self.turns
            if t.text and t.role is not Role.SYSTEM
        ]
        last = self.turns[-1] if self.turns else None
        note = emotion_note(last.emotion) if last is not None and last.role is Role.USER else None
        if note:
            system = f"{system}\n{note}"
        return [ChatMessage(role="system", content=system), *history]

    def add_user(
        self,
        turn_id: int,
        text: str,
        *,
        confidence: float | None = None,
        language: str | None = None,
        words: tuple[Word, ...] = (),
        emotion: Emotion | None = None,
    ) -> None:
        """Record what the user said (or typed) for ``turn_id``."""
        self.turns.append(Turn(turn_id, Role.USER, text, emotion=emotion))
        self._last_turn_id = max(self._last_turn_id, turn_id)
        if language:  # a typed turn (no language) keeps the one the user last spoke
            self.language = language
        self._forget_before(turn_id - RECENT_TURNS)
        words_json = [w.model_dump() for w in words] or None
        mood = emotion.model_dump(mode="json") if emotion is not None else None
        self._write_of(
            turn_id,
            _INSERT_USER,
            self.session_id,
            turn_id,
            text,
            confidence,
            language,
            words_json,
            mood,
        )
        self._write_of(turn_id, _COUNT_TURN, self.session_id)

    def speculate(self, turn_id: int) -> None:
        """``turn_id`` is speculative: what is recorded about it stays in this process until
        :meth:`commit` (written then) or :meth:`discard` (forgotten)."""
        self.commit(self._tentative)
        self._tentative, self._language_before = turn_id, self.language

    def commit(self, turn_id: int | None) -> None:
        """The speculative ``turn_id`` is the user's turn: its rows are written."""
        if turn_id is None or turn_id != self._tentative:
            return
        self._tentative = None
        for write in self._held:
            self._writes.put(write)
        self._held.clear()

    def discard(self, turn_id: int) -> None:
        """The speculative ``turn_id`` never happened: it leaves the conversation, nothing of
        it is written (its id is not reused: other services dropped it by id)."""
        if turn_id != self._tentative:
            return
        self._tentative, self._discarded = None, turn_id
        self._held.clear()
        self.language = self._language_before
        kept = [t for t in self.turns if t.turn_id != turn_id]
        self.turns.clear()
        self.turns.extend(kept)

    def add_assistant(
        self,
        turn_id: int,
        text: str,
        interrupted: bool,
        sources: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record the assistant's answer of ``turn_id`` as generated, cut to what the user
        heard if the gateway already reported it; ``sources``: the knowledge passages its
        prompt held."""
        if turn_id == self._discarded:
            return  # a discarded speculation's answer, ended after it was dropped
        heard = self._heard.pop(turn_id, None)
        if heard is not None:
            text, interrupted = text[:heard].rstrip(), True
        self.turns.append(Turn(turn_id, Role.ASSISTANT, text, interrupted))
        self._last_turn_id = max(self._last_turn_id, turn_id)  # a turn may be the assistant's only
        self._write_of(
            turn_id, _UPSERT_ASSISTANT, self.session_id, turn_id, text, interrupted, sources
        )

    def add_tool_call(self, call: ToolCallRecord) -> None:
        """Record a tool call the model made while answering (beside the turn's rows)."""
        arguments = dict(call.arguments) if call.arguments is not None else None
        self._write_of(
            call.turn_id,
            _INSERT_TOOL_CALL,
            self.session_id,
            call.turn_id,
            call.call_id,
            call.name,
            arguments,
            call.status,
            call.result,
            call.duration_ms,
        )

    def count_interruption(self, turn_id: int) -> None:
        """The user cut the assistant off in ``turn_id`` (counted once per turn)."""
        if turn_id in self._interrupted:
            return
        self._interrupted.add(turn_id)
        self._write(_COUNT_INTERRUPTION, self.session_id)

    def keep_heard(self, turn_id: int, chars: int) -> None:
        """The user heard only the first ``chars`` characters of ``turn_id``: keep that part,
        marked interrupted (now, or when the answer is recorded if it is still being cut)."""
        turn = next(
            (t for t in self.turns if t.turn_id == turn_id and t.role is Role.ASSISTANT), None
        )
        self.revision += 1
        if turn is None:
            if turn_id > self._last_turn_id - RECENT_TURNS:
                self._heard[turn_id] = max(0, chars)
            return
        turn.text = turn.text[: max(0, chars)].rstrip()
        turn.interrupted = True
        self._write(_UPSERT_ASSISTANT, self.session_id, turn_id, turn.text, True, None)

    def _forget_before(self, turn_id: int) -> None:
        self._heard = {t: c for t, c in self._heard.items() if t >= turn_id}
        self._interrupted = {t for t in self._interrupted if t >= turn_id}

    def _write(self, sql: str, *args: Any) -> None:
        self._writes.put((sql, args))

    def _write_of(self, turn_id: int, sql: str, *args: Any) -> None:
        """A write about ``turn_id``: held back while that turn is speculative."""
        if turn_id == self._discarded:
            return
        if turn_id == self._tentative:
            self._held.append((sql, args))
        else:
            self._write(sql, *args)

    async def persist_forever(self) -> None:
        """Write the changes in order until cancelled, then flush what is left (bounded)."""
        await self._writes.run()

    async def _execute(self, write: tuple[str, tuple[Any, ...]]) -> None:
        sql, args = write
        with DB_WRITE_SECONDS.labels("llm", "voice_transcripts").time():
            await self.pool.execute(sql, *args)
