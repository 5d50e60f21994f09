"""The knowledge store on the real PostgreSQL with pgvector and the real local embedding
model: documents indexed, questions answered by the right passage, never one of another
chatbot or another owner; re-index and delete replace and remove the passages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import numpy as np
import pytest

from parley_common.errors import BadInputError
from parley_common.knowledge import KnowledgeIndexer, KnowledgeStore, LocalEmbedder
from parley_common.knowledge.embedder import EMBEDDING_DIMENSION, Vectors, local_embedder
from parley_common.knowledge.extract import DOCUMENT_TOO_LARGE
from tests.conversation.knowledge_docs import DOCUMENTS, QUESTIONS, index_chatbots


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return local_embedder()


async def _index(pool: asyncpg.Pool, embedder: LocalEmbedder) -> tuple[str, str]:
    return await index_chatbots(KnowledgeIndexer(KnowledgeStore(pool), embedder))


async def test_vectors_are_unit_length_and_close_for_related_texts(
    embedder: LocalEmbedder,
) -> None:
    vectors = await embedder.embed(
        ["The shop opens at nine.", "When does the shop open?", "Penguins live in Antarctica."]
    )
    assert vectors.shape == (3, EMBEDDING_DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5 > similarity[0, 2] + 0.2


async def test_each_question_finds_the_passage_that_answers_it_in_its_own_chatbot(
    pool: asyncpg.Pool, embedder: LocalEmbedder
) -> None:
    ours, theirs = await _index(pool, embedder)
    store = KnowledgeStore(pool)
    for question in QUESTIONS:
        vector = (await embedder.embed([question.text]))[0]
        found = await store.search(ours, "alice", vector, 3)
        assert found, question
        assert found[0].filename == question.filename, (question, found[0])
        assert question.fact in found[0].text
        assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
        # The rival notes answer the same questions differently: never retrieved here.
        assert all("rival" not in p.filename and "Bartholomew" not in p.text for p in found)
        # Only the owner's documents: another user naming the chatbot finds nothing.
        assert await store.search(ours, "mallory", vector, 3) == []
        # Without an owner filter (an admin) it is still only this chatbot's.
        assert {p.filename for p in await store.search(ours, None, vector, 10)} <= {
            d.filename for d in DOCUMENTS
        }
    theirs_found = await store.search(
        theirs, "bob", (await embedder.embed([QUESTIONS[1].text]))[0], 5
    )
    assert [p.filename for p in theirs_found] == ["rival.txt"]


async def test_a_minimum_score_drops_unrelated_passages(
    pool: asyncpg.Pool, embedder: LocalEmbedder
) -> None:
    ours, _ = await _index(pool, embedder)
    unrelated = (await embedder.embed(["Which planet has the largest moons?"]))[0]
    assert await KnowledgeStore(pool).search(ours, "alice", unrelated, 3, min_score=0.3) == []


async def test_the_search_uses_the_hnsw_index(pool: asyncpg.Pool) -> None:
    method = await pool.fetchval(
        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
        " WHERE c.relname = 'knowledge_chunks_embedding'"
    )
    assert method == "hnsw"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT id FROM knowledge_chunks ORDER BY embedding <=> $1::vector LIMIT 3",
                "[" + ",".join(["0.05"] * EMBEDDING_DIMENSION) + "]",
            )
        )
    assert "knowledge_chunks_embedding" in plan


async def test_reindex_replaces_the_passages_and_delete_removes_them(
    pool: asyncpg.Pool, embedder: LocalEmbedder
) -> None:
    ours, _ = await _index(pool, embedder)
    store = KnowledgeStore(pool)
    indexer = KnowledgeIndexer(store, embedder)
    document = next(d for d in await store.documents(ours, "alice") if d.filename == "vehicles.md")
    before = await pool.fetch(
        "SELECT id, ordinal, text FROM knowledge_chunks WHERE document_id = $1 ORDER BY ordinal",
        uuid.UUID(document.id),
    )
    reindexed = await indexer.reindex(document)
    assert reindexed is not None
    assert reindexed.chunk_count == document.chunk_count == len(before)
    assert reindexed.indexed_at > document.indexed_at
    after = await pool.fetch(
        "SELECT id, ordinal, text FROM knowledge_chunks WHERE document_id = $1 ORDER BY ordinal",
        uuid.UUID(document.id),
    )
    assert [(r["ordinal"], r["text"]) for r in after] == [(r["ordinal"], r["text"]) for r in before]
    assert {r["id"] for r in after}.isdisjoint(r["id"] for r in before)

    assert not await store.delete(ours, document.id, "mallory")
    assert await store.delete(ours, document.id, "alice")
    assert await store.get(ours, document.id, None) is None
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM knowledge_chunks WHERE document_id = $1", uuid.UUID(document.id)
        )
        == 0
    )
    assert await indexer.reindex(document) is None
    vector = (await embedder.embed([QUESTIONS[2].text]))[0]
    assert all(p.filename != "vehicles.md" for p in await store.search(ours, "alice", vector, 5))


async def test_a_document_of_too_many_passages_is_refused_before_embedding(
    pool: asyncpg.Pool, embedder: LocalEmbedder
) -> None:
    class Refusing:
        name = "refusing"
        dimension = EMBEDDING_DIMENSION

        async def embed(self, texts: Sequence[str]) -> Vectors:
            raise AssertionError("nothing is embedded")

        async def warm(self) -> None:
            raise AssertionError("nothing is embedded")

    indexer = KnowledgeIndexer(KnowledgeStore(pool), Refusing(), max_chunks=2)
    chatbot = f"kb-{uuid.uuid4()}"
    text = "\n\n".join(" ".join(["word"] * 100) for _ in range(3)).encode()
    with pytest.raises(BadInputError) as exc:
        await indexer.upload(
            user_id="alice", chatbot_id=chatbot, filename="long.txt", media_type=None, data=text
        )
    assert exc.value.code == DOCUMENT_TOO_LARGE
    assert await KnowledgeStore(pool).documents(chatbot, None) == []
