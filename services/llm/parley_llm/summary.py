"""A title and a short summary of a conversation, written by the session's own LLM when the
session ends, and stored on its ``voice_sessions`` row.

A dialogue worker that releases a session asks for it on ``SUMMARY_SUBJECT`` once the
memory's last write is done (so the stored transcript is complete); whichever dialogue
worker of the queue group takes the request reads the transcript from PostgreSQL, so a
session ended by its client, by the idle reaper (an S2 conversation idles out) or by a
phone call's hang-up is summarised the same way, off the path of the session's end. A
session that only moves to another worker is still active and is left alone; one without
turns gets no summary and costs no LLM call; a model that fails leaves the status
``failed`` (and any earlier summary in place).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts.session import LlmProvider as LlmName
from parley_common.contracts.session import SessionConfig, SessionStatus
from parley_common.contracts.summaries import (
    SUMMARY_SUBJECT,
    SummaryDone,
    SummaryRequest,
    SummaryStatus,
)
from parley_common.errors import ProviderFailedError, safe_message
from parley_common.fallback import deadline_env
from parley_common.settings import positive_int_env
from parley_llm.providers.base import ChatMessage, LlmProvider
from parley_llm.providers.registry import get_provider

log = logging.getLogger(__name__)

# The prompt is bounded however long the call was: the most recent turns that fit, each
# cut to a length that still says what it was about.
MAX_TRANSCRIPT_CHARS = positive_int_env("LLM_SUMMARY_MAX_CHARS", 12_000)
# The local model reads at most 2048 prompt tokens, on the CPU that also serves live turns.
LOCAL_MAX_TRANSCRIPT_CHARS = positive_int_env("LLM_SUMMARY_LOCAL_MAX_CHARS", 4_000)
MAX_TURN_CHARS = 1_500
MIN_CUT_CHARS = 80
MAX_TOKENS = 200
# Includes the waits of a summary on the local model for the live turns it yields to.
SUMMARY_TIMEOUT_S = deadline_env("LLM_SUMMARY_TIMEOUT_S", 120.0)
# How often a summary on the local model looks whether a live turn wants the model.
YIELD_POLL_S = 0.05
TITLE_WORDS = 8
MAX_TITLE_CHARS = 80
MAX_SUMMARY_CHARS = 2_000
OMITTED = "[earlier turns omitted]"

INSTRUCTIONS = (
    "You summarise a conversation between a user and a voice assistant. Answer with exactly "
    "two lines and nothing else:\n"
    f"Title: <a title of at most {TITLE_WORDS} words>\n"
    "Summary: <two to four sentences: what the user wanted, and what the assistant answered "
    "or what was decided>\n"
    "Write both in the language the conversation was held in."
)

_LABEL = re.compile(r"^\W*(title|summary)\W*:\s*(.*)$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# Markup and quotes a model puts around its lines ("**Title:** \"Paris.\"").
_LEADING = re.compile(r"^[\s\"'*#_`“”«»]+")
_TRAILING = re.compile(r"[\s\"'*#_`“”«».]+$")

_SESSION = "SELECT status, config FROM voice_sessions WHERE id = $1"
_TRANSCRIPT = """SELECT role, text FROM voice_transcripts
   WHERE session_id = $1 AND role IN ('user', 'assistant') AND text <> ''
   ORDER BY turn_id, CASE role WHEN 'user' THEN 0 ELSE 1 END, id"""
_MARK = "UPDATE voice_sessions SET summary_status = $2, updated_at = now() WHERE id = $1"
_STORE = """UPDATE voice_sessions SET title = $2, summary = $3, summary_status = 'ready',
       summary_generated_at = $4, updated_at = now() WHERE id = $1"""


@dataclass(frozen=True, slots=True)
class Summary:
    """What the model wrote, cleaned up."""

    title: str
    text: str


def summary_prompt(
    turns: Sequence[tuple[str, str]], max_chars: int | None = None
) -> list[ChatMessage]:
    """The messages asking for a title and summary of ``turns`` (role, text), oldest first:
    the most recent turns within ``max_chars`` (default ``MAX_TRANSCRIPT_CHARS``), each cut
    at ``MAX_TURN_CHARS``."""
    budget = MAX_TRANSCRIPT_CHARS if max_chars is None else max_chars
    lines: list[str] = []
    used = 0
    for role, text in reversed(turns):
        said = " ".join(text.split())
        if len(said) > MAX_TURN_CHARS:
            said = said[:MAX_TURN_CHARS].rstrip() + "…"
        line = f"{'User' if role == 'user' else 'Assistant'}: {said}"
        room = budget - used
        if len(line) > room:
            # The turn that does not fit keeps its beginning when that says something.
            if room >= MIN_CUT_CHARS:
                lines.append(line[: room - 1].rstrip() + "…")
            lines.append(OMITTED)
            break
        lines.append(line)
        used += len(line) + 1
    conversation = "\n".join(reversed(lines))
    return [
        ChatMessage(role="system", content=INSTRUCTIONS),
        ChatMessage(role="user", content=f"The conversation:\n{conversation}"),
    ]


def parse_summary(answer: str) -> Summary:
    """The title and summary in the model's answer. A model that ignored the format still
    gives a summary: its whole answer, titled by its first words. Raises ProviderFailedError
    on an empty answer."""
    title, body, rest = "", "", []
    for raw in answer.strip().splitlines():
        match = _LABEL.match(raw.strip())
        if match and match.group(1).lower() == "title" and not title:
            title = match.group(2)
        elif match and match.group(1).lower() == "summary" and not body:
            body = match.group(2)
        elif raw.strip():
            rest.append(raw.strip())
    text = _LEADING.sub("", " ".join([body, *rest]))
    if not text:
        text = title
    if not text:
        raise ProviderFailedError("the model wrote no summary")
    if not title:
        title = " ".join(_SENTENCE_END.split(text, maxsplit=1)[0].split()[:TITLE_WORDS])
    title = _TRAILING.sub("", _LEADING.sub("", title))
    return Summary(title=title[:MAX_TITLE_CHARS].strip(), text=text[:MAX_SUMMARY_CHARS].strip())


ProviderLookup = Callable[[LlmName], LlmProvider]


class Summarizer:
    """Writes the summaries of sessions into PostgreSQL with each session's own model."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: ProviderLookup = get_provider,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.pool = pool
        self.providers = providers
        # Whether a live session of this worker is answering: the local model is one per
        # process, so a summary on it gives way (stopped, started again once they are done).
        self.busy = busy

    async def summarize(self, request: SummaryRequest) -> SummaryStatus | None:
        """Summarise the session if it ended (or ``force``) and has turns; returns the status
        stored, None when there was nothing to do. Never raises for a failing model."""
        try:
            sid = uuid.UUID(request.session_id)
        except ValueError:
            return None
        row = await self.pool.fetchrow(_SESSION, sid)
        if row is None or (row["status"] != SessionStatus.ENDED and not request.force):
            return None
        turns = [(r["role"], r["text"]) for r in await self.pool.fetch(_TRANSCRIPT, sid)]
        if not turns:
            return None
        config = SessionConfig.model_validate(row["config"])
        await self.pool.execute(_MARK, sid, SummaryStatus.PENDING.value)
        try:
            async with asyncio.timeout(SUMMARY_TIMEOUT_S):
                summary = parse_summary(await self._generate(config, turns))
        except asyncio.CancelledError:
            # The worker is stopping: not left 'pending' for ever (a regeneration can follow).
            await asyncio.shield(self.pool.execute(_MARK, sid, SummaryStatus.FAILED.value))
            raise
        except Exception as exc:
            # Logged by class only: a vendor's text may quote the prompt or hold internals.
            log.warning(
                "summary failed",
                extra={
                    "session_id": request.session_id,
                    "provider": config.llm_provider.value,
                    "error": type(exc).__name__,
                    "reason": safe_message(exc, "unexpected error"),
                },
            )
            await self.pool.execute(_MARK, sid, SummaryStatus.FAILED.value)
            return SummaryStatus.FAILED
        await self.pool.execute(_STORE, sid, summary.title, summary.text, datetime.now(UTC))
        log.info("summary stored", extra={"session_id": request.session_id})
        return SummaryStatus.READY

    async def _generate(self, config: SessionConfig, turns: Sequence[tuple[str, str]]) -> str:
        provider = self.providers(config.llm_provider)
        if config.llm_provider is not LlmName.LOCAL:  # a cloud model is shared by nobody here
            return await _complete(provider, summary_prompt(turns), config.llm_model)
        prompt = summary_prompt(turns, LOCAL_MAX_TRANSCRIPT_CHARS)
        while True:
            while self.busy():  # noqa: ASYNC110 - sessions say busy() with no event to wait on
                await asyncio.sleep(YIELD_POLL_S)
            answer = await self._unless_busy(_complete(provider, prompt, config.llm_model))
            if answer is not None:
                return answer

    async def _unless_busy(self, generation: Coroutine[Any, Any, str]) -> str | None:
        """The generation's answer, or None when a live turn wanted the model first (the
        generation is then stopped: the local model frees itself at its next token)."""
        task = asyncio.ensure_future(generation)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=YIELD_POLL_S)
                if not task.done() and self.busy():
                    return None
            return task.result()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _complete(provider: LlmProvider, prompt: list[ChatMessage], model: str | None) -> str:
    """The whole answer of one generation."""
    parts: list[str] = []
    stream = provider.stream(prompt, MAX_TOKENS, model=model)
    # aclosing: a summary stopped or timed out stops the model now, not at garbage collection.
    async with contextlib.aclosing(stream):
        async for delta in stream:
            parts.append(delta)
    return "".join(parts)


async def request_summary(bus: Bus, session_id: str, *, force: bool = False) -> None:
    """Ask the dialogue workers for the session's summary (at most once, not awaited)."""
    await bus.publish(
        SUMMARY_SUBJECT,
        SummaryRequest(session_id=session_id, force=force),
        MessageMeta(session_id=session_id),
    )


async def serve_summaries(
    bus: Bus, pool: asyncpg.Pool, busy: Callable[[], bool] = lambda: False
) -> None:
    """Answer summary requests in the ``llm`` queue group, one at a time per worker; on the
    local model a summary gives way whenever ``busy()`` says a live session is answering."""
    summarizer = Summarizer(pool, busy=busy)

    async def handle(msg: Received) -> None:
        status = await summarizer.summarize(SummaryRequest.model_validate_json(msg.data))
        if msg.reply:  # a client asked to regenerate, and waits for the outcome
            await bus.respond(msg, SummaryDone(status=status), msg.meta)

    await bus.subscribe(SUMMARY_SUBJECT, handle, queue="llm")
