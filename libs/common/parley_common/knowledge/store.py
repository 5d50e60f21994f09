"""Knowledge documents and their embedded chunks in PostgreSQL (pgvector), and the search.

Every read and write names the chatbot, and the owner where the caller is a user: a chunk of
another chatbot, or of another user's chatbot, is never returned. ``owner=None`` means no
owner filter (authentication off, or an admin).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from parley_common.knowledge.chunking import Chunk

__all__ = ["Document", "KnowledgeStore", "RetrievedChunk", "vector_literal"]

_COLUMNS = """d.id, d.user_id, d.chatbot_id, d.filename, d.media_type, d.size_bytes,
    d.text_chars, d.chunk_count, d.embedding_model, d.created_at, d.indexed_at"""
_OWNED = "d.chatbot_id = $1 AND ($2::text IS NULL OR d.user_id = $2)"


@dataclass(frozen=True, slots=True)
class Document:
    """One uploaded document as stored (its bytes are read separately)."""

    id: str
    user_id: str
    chatbot_id: str
    filename: str
    media_type: str
    size_bytes: int
    text_chars: int
    chunk_count: int
    embedding_model: str
    created_at: datetime
    indexed_at: datetime


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """A passage found for a question: where it comes from and how close it is (cosine)."""

    chunk_id: int
    document_id: str
    filename: str
    ordinal: int
    text: str
    score: float


def vector_literal(vector: npt.NDArray[np.float32]) -> str:
    """pgvector's text form of ``vector`` (asyncpg has no codec for the type)."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def _document(row: asyncpg.Record) -> Document:
    values: dict[str, Any] = dict(row)
    values["id"] = str(values["id"])
    return Document(**values)


class KnowledgeStore:
    """Reads and writes ``knowledge_documents`` and ``knowledge_chunks``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(
        self,
        *,
        user_id: str,
        chatbot_id: str,
        filename: str,
        media_type: str,
        content: bytes,
        text_chars: int,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
        embedding_model: str,
    ) -> Document:
        """Store a document with its chunks, in one transaction."""
        document_id = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO knowledge_documents (id, user_id, chatbot_id, filename,
                       media_type, size_bytes, content, text_chars, chunk_count,
                       embedding_model, indexed_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())""",
                document_id,
                user_id,
                chatbot_id,
                filename,
                media_type,
                len(content),
                content,
                text_chars,
                len(chunks),
                embedding_model,
            )
            await self._insert_chunks(conn, document_id, user_id, chatbot_id, chunks, vectors)
        found = await self.get(chatbot_id, str(document_id), None)
        assert found is not None
        return found

    async def reindexed(
        self,
        document: Document,
        *,
        text_chars: int,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
        embedding_model: str,
    ) -> Document | None:
        """Replace the document's chunks; None when it was deleted meanwhile."""
        document_id = uuid.UUID(document.id)
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                """UPDATE knowledge_documents SET text_chars = $2, chunk_count = $3,
                       embedding_model = $4, indexed_at = now()
                   WHERE id = $1 RETURNING id""",
                document_id,
                text_chars,
                len(chunks),
                embedding_model,
            )
            if updated is None:
                return None
            await conn.execute("DELETE FROM knowledge_chunks WHERE document_id = $1", document_id)
            await self._insert_chunks(
                conn, document_id, document.user_id, document.chatbot_id, chunks, vectors
            )
        return await self.get(document.chatbot_id, document.id, None)

    @staticmethod
    async def _insert_chunks(
        conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],  # what acquire() yields
        document_id: uuid.UUID,
        user_id: str,
        chatbot_id: str,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        await conn.executemany(
            """INSERT INTO knowledge_chunks (document_id, user_id, chatbot_id, ordinal, text,
                   embedding)
               VALUES ($1, $2, $3, $4, $5, $6::vector)""",
            [
                (document_id, user_id, chatbot_id, c.ordinal, c.text, vector_literal(v))
                for c, v in zip(chunks, vectors, strict=True)
            ],
        )

    async def documents(self, chatbot_id: str, owner: str | None) -> list[Document]:
        """The chatbot's documents, oldest first."""
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM knowledge_documents d WHERE {_OWNED}"
            " ORDER BY d.created_at, d.id",
            chatbot_id,
            owner,
        )
        return [_document(r) for r in rows]

    async def get(self, chatbot_id: str, document_id: str, owner: str | None) -> Document | None:
        """One document of the chatbot; None when there is no such one (or not the owner's)."""
        parsed = _uuid(document_id)
        if parsed is None:
            return None
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM knowledge_documents d WHERE {_OWNED} AND d.id = $3",
            chatbot_id,
            owner,
            parsed,
        )
        return _document(row) if row is not None else None

    async def content(self, document_id: str) -> bytes | None:
        """The bytes a document was uploaded with."""
        parsed = _uuid(document_id)
        if parsed is None:
            return None
        data: bytes | None = await self.pool.fetchval(
            "SELECT content FROM knowledge_documents WHERE id = $1", parsed
        )
        return data

    async def delete(self, chatbot_id: str, document_id: str, owner: str | None) -> bool:
        """Delete a document and its chunks; whether there was one to delete."""
        parsed = _uuid(document_id)
        if parsed is None:
            return False
        deleted = await self.pool.fetchval(
            f"DELETE FROM knowledge_documents d WHERE {_OWNED} AND d.id = $3 RETURNING d.id",
            chatbot_id,
            owner,
            parsed,
        )
        return deleted is not None

    async def search(
        self,
        chatbot_id: str,
        owner: str | None,
        vector: npt.NDArray[np.float32],
        k: int,
        min_score: float = 0.0,
    ) -> list[RetrievedChunk]:
        """The ``k`` chunks of the chatbot closest to ``vector``, closest first, none below
        ``min_score`` cosine similarity."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The HNSW index is searched before the chatbot filter applies: iterative scans
            # keep searching until k rows of this chatbot are found (pgvector 0.8).
            await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            rows = await conn.fetch(
                """SELECT c.id, c.document_id, d.filename, c.ordinal, c.text, c.score
                   FROM (SELECT id, document_id, ordinal, text,
                                1 - (embedding <=> $3::vector) AS score
                         FROM knowledge_chunks
                         WHERE chatbot_id = $1 AND ($2::text IS NULL OR user_id = $2)
                         ORDER BY embedding <=> $3::vector LIMIT $4) AS c
                   JOIN knowledge_documents d ON d.id = c.document_id
                   ORDER BY c.score DESC""",
                chatbot_id,
                owner,
                vector_literal(vector),
                k,
            )
        return [
            RetrievedChunk(
                chunk_id=r["id"],
                document_id=str(r["document_id"]),
                filename=r["filename"],
                ordinal=r["ordinal"],
                text=r["text"],
                score=float(r["score"]),
            )
            for r in rows
            if float(r["score"]) >= min_score
        ]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
