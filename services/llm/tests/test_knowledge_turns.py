"""A dialogue session's retrieval (``TurnKnowledge``) on the real PostgreSQL and embedding
model: once per turn, into the latest user message, remembered as the turn's sources for a
few turns; nothing without ``use_rag`` or a chatbot; a failing retrieval answers without it;
the ``knowledge_search`` seam; partial transcripts searched before their final comes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from prometheus_client import REGISTRY

from parley_common.contracts.bus import SessionAssign
from parley_common.contracts.session import SessionConfig
from parley_common.knowledge import KnowledgeIndexer, KnowledgeStore
from parley_common.knowledge.embedder import EMBEDDING_DIMENSION, Vectors, local_embedder
from parley_common.testing import eventually
from parley_llm.knowledge import RECENT_TURNS, TurnKnowledge
from parley_llm.providers.base import ChatMessage
from tests.conversation.knowledge_docs import QUESTIONS, index_chatbots


class CountingEmbedder:
    """The local model, counting its calls; or failing, when told to."""

    name = "counting"
    dimension = EMBEDDING_DIMENSION

    def __init__(self, fail: bool = False, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.delay_s = delay_s

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise OSError("the model file went away")
        return await local_embedder().embed(texts)

    async def warm(self) -> None:
        await local_embedder().warm()


@pytest.fixture(scope="module")
async def chatbots(pool: asyncpg.Pool) -> tuple[str, str]:
    """Alice's chatbot with the three documents, bob's with the rival notes."""
    return await index_chatbots(KnowledgeIndexer(KnowledgeStore(pool), local_embedder()))


async def _session(
    pool: asyncpg.Pool, user: str, chatbot: str | None, **options: object
) -> SessionAssign:
    config = SessionConfig.model_validate(options)
    sid = uuid.uuid4()
    await pool.execute(
        # Ended: no worker serves it, and it counts towards no user's cap of open sessions.
        """INSERT INTO voice_sessions (id, user_id, chatbot_id, config, stt_provider,
               llm_provider, tts_provider, response_style, interrupt_sensitivity, status)
           VALUES ($1, $2, $3, $4, 'scripted', 'scripted', 'scripted', 'concise', 'medium',
                   'ended')""",
        sid,
        user,
        chatbot,
        config.model_dump(mode="json"),
    )
    return SessionAssign(session_id=str(sid), user_id=user, config=config)


def _conversation(question: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", "You are a helpful assistant."),
        ChatMessage("user", "Hello!"),
        ChatMessage("assistant", "Hi, how can I help?"),
        ChatMessage("user", question),
    ]


async def test_a_turn_retrieves_once_into_its_latest_message(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    embedder = CountingEmbedder()
    knowledge = TurnKnowledge(
        pool, await _session(pool, "alice", chatbots[0], use_rag=True), embedder
    )
    question = QUESTIONS[1]
    messages = _conversation(question.text)
    prompt = await knowledge.prompt(1, messages)
    assert prompt[:-1] == messages[:-1]
    assert prompt[-1].role == "user"
    assert question.fact in prompt[-1].content
    assert prompt[-1].content.endswith(f"Question: {question.text}")
    # A fallback provider asking again gets the same passages without a second search.
    assert await knowledge.prompt(1, messages) == prompt
    assert embedder.calls == 1
    sources = knowledge.sources(1)
    assert sources is not None
    assert sources[0]["filename"] == question.filename
    assert set(sources[0]) == {"chunk_id", "document_id", "filename", "ordinal", "score"}
    assert len(sources) <= 4
    # Bookkeeping is kept for the recent turns only.
    for turn in range(2, 2 + RECENT_TURNS):
        await knowledge.prompt(turn, _conversation(QUESTIONS[turn % len(QUESTIONS)].text))
    assert knowledge.sources(1) is None
    assert knowledge.sources(1 + RECENT_TURNS) is not None


async def test_nothing_is_retrieved_without_use_rag_or_a_chatbot(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    messages = _conversation(QUESTIONS[0].text)
    for assign in (
        await _session(pool, "alice", chatbots[0]),
        await _session(pool, "alice", None, use_rag=True),
    ):
        embedder = CountingEmbedder()
        knowledge = TurnKnowledge(pool, assign, embedder)
        assert await knowledge.prompt(1, messages) == messages
        assert knowledge.sources(1) is None
        assert embedder.calls == 0


async def test_a_failing_retrieval_answers_without_knowledge(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    def failed() -> float:
        return REGISTRY.get_sample_value("parley_llm_retrievals_total", {"outcome": "failed"}) or 0

    before = failed()
    assign = await _session(pool, "alice", chatbots[0], use_rag=True)
    knowledge = TurnKnowledge(pool, assign, CountingEmbedder(fail=True))
    messages = _conversation(QUESTIONS[0].text)
    assert await knowledge.prompt(1, messages) == messages
    assert knowledge.sources(1) is None
    assert failed() == before + 1


async def test_the_search_seam_finds_only_the_sessions_chatbot(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    ours, theirs = chatbots
    # The tool works whether or not the session retrieves every turn.
    alice = TurnKnowledge(pool, await _session(pool, "alice", ours), CountingEmbedder())
    found = await alice.search(QUESTIONS[2].text, 2)
    assert len(found) == 2
    assert found[0].startswith("(from vehicles.md)")
    assert "7316-Q" in found[0]
    assert not any("0000-Z" in passage for passage in found)
    bob = TurnKnowledge(pool, await _session(pool, "bob", theirs), CountingEmbedder())
    assert [p.split(")")[0] for p in await bob.search(QUESTIONS[2].text, 3)] == ["(from rival.txt"]
    # Another user naming alice's chatbot finds none of her documents.
    mallory = TurnKnowledge(pool, await _session(pool, "mallory", ours), CountingEmbedder())
    assert await mallory.search(QUESTIONS[2].text, 3) == []


def _prefetched() -> float:
    value = REGISTRY.get_sample_value("parley_llm_retrievals_total", {"outcome": "prefetched"})
    return value or 0


async def test_a_partial_transcript_is_searched_before_its_final_arrives(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    embedder = CountingEmbedder()
    knowledge = TurnKnowledge(
        pool, await _session(pool, "alice", chatbots[0], use_rag=True), embedder
    )
    before = _prefetched()
    async with asyncio.TaskGroup() as tg:
        runner = tg.create_task(knowledge.run())
        # Partials come faster than they are searched: only the latest one is.
        knowledge.prefetch("what is the")
        knowledge.prefetch("what is the access code")
        knowledge.prefetch("What is the access code of the garage")
        await eventually(lambda: embedder.calls == 1 and not knowledge.prefetching)
        assert embedder.calls == 1
        # The final says the same words, punctuated: no search at the end of the turn.
        prompt = await knowledge.prompt(1, _conversation("What is the access code of the garage?"))
        assert embedder.calls == 1
        assert _prefetched() == before + 1
        assert "7316-Q" in prompt[-1].content
        sources = knowledge.sources(1)
        assert sources is not None
        assert sources[0]["filename"] == "vehicles.md"
        # A final that says something else is searched then.
        prompt = await knowledge.prompt(2, _conversation(QUESTIONS[3].text))
        assert embedder.calls == 2
        assert QUESTIONS[3].fact in prompt[-1].content
        runner.cancel()


async def test_a_final_that_comes_while_its_partial_is_searched_waits_for_that_search(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    embedder = CountingEmbedder(delay_s=0.3)
    knowledge = TurnKnowledge(
        pool, await _session(pool, "alice", chatbots[0], use_rag=True), embedder
    )
    before = _prefetched()
    async with asyncio.TaskGroup() as tg:
        runner = tg.create_task(knowledge.run())
        knowledge.prefetch("How much is the daily meal allowance in Lisbon")
        await eventually(lambda: embedder.calls == 1)
        assert knowledge.prefetching
        prompt = await knowledge.prompt(1, _conversation(QUESTIONS[3].text))
        assert embedder.calls == 1
        assert _prefetched() == before + 1
        assert QUESTIONS[3].fact in prompt[-1].content
        runner.cancel()


async def test_without_use_rag_partials_are_not_searched(
    pool: asyncpg.Pool, chatbots: tuple[str, str]
) -> None:
    embedder = CountingEmbedder()
    knowledge = TurnKnowledge(pool, await _session(pool, "alice", chatbots[0]), embedder)
    knowledge.prefetch("What is the access code of the garage")
    await asyncio.wait_for(knowledge.run(), 1)  # nothing to do: it returns at once
    assert embedder.calls == 0
