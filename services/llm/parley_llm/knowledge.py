"""Answers from the chatbot's knowledge base: for a session with ``use_rag`` on, each user
turn's question is embedded, the closest passages of the session's chatbot (and only of its
owner's documents) are retrieved and put in the prompt, and the turn remembers which ones, so
its transcript row can show the sources.

Retrieval starts while the user is still speaking: each partial transcript is searched (the
latest one only, in one task the session owns), and a final transcript that says the same
words takes those passages at no cost at the end of the turn.

The passages go into the latest user message, not the system prompt: the conversation before
it stays the same tokens from turn to turn, which is what the local model's cache reuses.
A retrieval that fails (no database, no model) is logged and the turn is answered without it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter

from parley_common.contracts.bus import SessionAssign
from parley_common.contracts.knowledge import KnowledgeSource
from parley_common.knowledge import Embedder, KnowledgeStore, RetrievedChunk
from parley_common.knowledge.embedder import local_embedder
from parley_common.observability import tracing
from parley_common.observability.metrics import latency_histogram
from parley_llm.providers.base import ChatMessage

__all__ = ["RETRIEVAL_SECONDS", "TurnKnowledge", "augmented_question"]

log = logging.getLogger(__name__)

RETRIEVAL_SECONDS = latency_histogram(
    "parley_llm_retrieval_seconds", "A user turn's question embedded and its passages found"
)
RETRIEVALS = Counter(
    "parley_llm_retrievals_total",
    "Knowledge retrievals by outcome (found, none, no_chatbot, failed; prefetched: a turn"
    " answered with what its partial transcript retrieved)",
    ["outcome"],
)
TOP_K_ENV = "KNOWLEDGE_TOP_K"
MIN_SCORE_ENV = "KNOWLEDGE_MIN_SCORE"
DEFAULT_TOP_K = 4
# Cosine similarity below which a passage is not about the question (all-MiniLM-L6-v2 puts
# unrelated English sentences around 0 to 0.15, a passage that answers well above 0.3).
DEFAULT_MIN_SCORE = 0.2
# Turns whose retrieved passages are kept until their answer is recorded.
RECENT_TURNS = 4
# Partial transcripts whose passages are kept for the final that repeats one of them.
PREFETCHED_TEXTS = 4
_NOT_WORDS = re.compile(r"[^\w]+")

_CHATBOT = "SELECT chatbot_id, user_id FROM voice_sessions WHERE id = $1"


@dataclass(frozen=True, slots=True)
class _Chatbot:
    chatbot_id: str
    owner: str


def augmented_question(question: str, passages: Sequence[RetrievedChunk]) -> str:
    """The user's message as the model reads it: the passages, then the question."""
    quoted = "\n\n".join(
        f"[{i}] (from {p.filename})\n{p.text}" for i, p in enumerate(passages, start=1)
    )
    return (
        "Passages from the knowledge base that may answer the question below. Answer from"
        " them when they do, without mentioning them; if they do not, answer as you would"
        f" otherwise.\n\n{quoted}\n\nQuestion: {question}"
    )


class TurnKnowledge:
    """Retrieval for one session's turns (a no-op unless the session has ``use_rag``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        assign: SessionAssign,
        embedder: Embedder | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
    ) -> None:
        self.enabled = assign.config.use_rag
        self.pool = pool
        self.session_id = assign.session_id
        self.store = KnowledgeStore(pool)
        self._embedder = embedder
        self.top_k = top_k or int(os.environ.get(TOP_K_ENV, DEFAULT_TOP_K))
        self.min_score = (
            min_score
            if min_score is not None
            else float(os.environ.get(MIN_SCORE_ENV, DEFAULT_MIN_SCORE))
        )
        self._chatbot: _Chatbot | None = None
        self._looked_up = False
        self._turns: OrderedDict[int, list[RetrievedChunk]] = OrderedDict()
        # The latest partial transcript to search, and what partials found, by their words.
        self._wanted: tuple[str, str] | None = None
        self._wake = asyncio.Event()
        # The partial being searched now (its words, and the passages it will find).
        self._inflight: tuple[str, asyncio.Future[list[RetrievedChunk]]] | None = None
        self._prefetched: OrderedDict[str, list[RetrievedChunk]] = OrderedDict()

    @property
    def embedder(self) -> Embedder:
        """The embedder questions go through (the process's local model by default)."""
        if self._embedder is None:
            self._embedder = local_embedder()
        return self._embedder

    async def prompt(
        self, turn_id: int, messages: Sequence[ChatMessage], traceparent: str = ""
    ) -> list[ChatMessage]:
        """``messages`` with the latest user message carrying the passages retrieved for
        it (once per turn: a fallback provider gets the same ones)."""
        if not self.enabled or not messages or messages[-1].role != "user":
            return list(messages)
        question = messages[-1].content
        if turn_id not in self._turns:
            found = await self._prefetched_for(question)
            if found is None:
                found = await self._retrieve(question, traceparent, **{"parley.turn_id": turn_id})
            else:
                RETRIEVALS.labels("prefetched").inc()
                with tracing.child_span(
                    "knowledge.retrieve", traceparent, "llm", **{"parley.turn_id": turn_id}
                ) as span:
                    span.set_attribute("parley.knowledge.prefetched", True)
                    span.set_attribute("parley.knowledge.passages", len(found))
            self._remember(turn_id, found)
        passages = self._turns[turn_id]
        if not passages:
            return list(messages)
        return [*messages[:-1], ChatMessage("user", augmented_question(question, passages))]

    async def search(self, query: str, k: int) -> list[str]:
        """The ``k`` passages of the session's chatbot closest to ``query``, best first, each
        with the document it is from (the ``knowledge_search`` tool's seam; works whether or
        not the session has ``use_rag``). Errors propagate: the tool reports them."""
        found = await self._find(query, k)
        return [f"(from {p.filename}) {p.text}" for p in found]

    def prefetch(self, partial: str, traceparent: str = "") -> None:
        """The user has said ``partial`` so far: search for it now (never waits; a newer
        partial replaces one not yet searched)."""
        if self.enabled and partial.strip():
            self._wanted = (partial, traceparent)
            self._wake.set()

    async def _warm(self) -> None:
        try:
            await self.embedder.warm()
        except Exception as exc:
            # The first question will try again, and answer without knowledge if it fails.
            log.warning("embedding model did not load", extra={"error": type(exc).__name__})

    async def _prefetched_for(self, question: str) -> list[RetrievedChunk] | None:
        """What a partial saying the same words found, waiting for it if it is being
        searched now; None when no partial said them."""
        key = _words(question)
        found = self._prefetched.pop(key, None)
        if found is None and self._inflight is not None and self._inflight[0] == key:
            future = self._inflight[1]
            await asyncio.wait({future})  # a cancelled search is no answer, not an error
            found = None if future.cancelled() else future.result()
        return found

    @property
    def prefetching(self) -> bool:
        """Whether a partial transcript is waiting to be searched or being searched."""
        return self._wanted is not None or self._inflight is not None

    async def run(self) -> None:
        """Search each partial transcript ``prefetch`` was given, latest first, until
        cancelled (a session with ``use_rag`` runs it in its task group). The model loads
        first, so that the session's first question does not wait for it."""
        if self.enabled:
            await self._warm()
        while self.enabled:
            await self._wake.wait()
            self._wake.clear()
            if self._wanted is None:
                continue
            (partial, traceparent), self._wanted = self._wanted, None
            key = _words(partial)
            if key in self._prefetched:
                continue
            future: asyncio.Future[list[RetrievedChunk]] = (
                asyncio.get_running_loop().create_future()
            )
            self._inflight = (key, future)
            try:
                found = await self._retrieve(
                    partial, traceparent, **{"parley.knowledge.partial": True}
                )
                future.set_result(found)
            finally:
                self._inflight = None
                if not future.done():
                    future.cancel()
            self._prefetched[key] = found
            while len(self._prefetched) > PREFETCHED_TEXTS:
                self._prefetched.popitem(last=False)

    def sources(self, turn_id: int) -> list[dict[str, Any]] | None:
        """The turn's passages as its transcript row stores them; None without any."""
        found = self._turns.get(turn_id)
        if not found:
            return None
        return [
            KnowledgeSource(
                chunk_id=p.chunk_id,
                document_id=p.document_id,
                filename=p.filename,
                ordinal=p.ordinal,
                score=round(p.score, 4),
            ).model_dump()
            for p in found
        ]

    def _remember(self, turn_id: int, passages: list[RetrievedChunk]) -> None:
        self._turns[turn_id] = passages
        while len(self._turns) > RECENT_TURNS:
            self._turns.popitem(last=False)

    async def _retrieve(
        self, question: str, traceparent: str, **attributes: Any
    ) -> list[RetrievedChunk]:
        started = time.perf_counter()
        with tracing.child_span("knowledge.retrieve", traceparent, "llm", **attributes) as span:
            try:
                if await self._chatbot_of_session() is None:
                    RETRIEVALS.labels("no_chatbot").inc()
                    return []
                found = await self._find(question, self.top_k)
            except Exception as exc:
                # Knowledge helps an answer; its absence must not stop one.
                log.warning(
                    "knowledge retrieval failed",
                    extra={"session_id": self.session_id, "error": type(exc).__name__},
                )
                RETRIEVALS.labels("failed").inc()
                span.set_attribute("parley.knowledge.failed", True)
                return []
            finally:
                RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
            span.set_attribute("parley.knowledge.passages", len(found))
            RETRIEVALS.labels("found" if found else "none").inc()
            return found

    async def _find(self, query: str, k: int) -> list[RetrievedChunk]:
        chatbot = await self._chatbot_of_session()
        if chatbot is None:
            return []
        vector = (await self.embedder.embed([query]))[0]
        return await self.store.search(chatbot.chatbot_id, chatbot.owner, vector, k, self.min_score)

    async def _chatbot_of_session(self) -> _Chatbot | None:
        if not self._looked_up:
            row = await self.pool.fetchrow(_CHATBOT, uuid.UUID(self.session_id))
            if row is not None and row["chatbot_id"]:
                self._chatbot = _Chatbot(row["chatbot_id"], row["user_id"])
            self._looked_up = True
        return self._chatbot


def _words(text: str) -> str:
    """What a transcript says, whatever its case and punctuation (a final often differs
    from the partial before it only by those)."""
    return _NOT_WORDS.sub(" ", text.lower()).strip()
