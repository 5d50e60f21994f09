"""Upload and re-index: bytes checked, turned into text, chunked, embedded and stored.

A document over the byte limit, or whose text makes more passages than the passage limit, is
refused before anything is embedded."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import numpy.typing as npt

from parley_common.errors import BadInputError
from parley_common.knowledge.chunking import Chunk, chunk_text
from parley_common.knowledge.embedder import Embedder
from parley_common.knowledge.extract import (
    DOCUMENT_TOO_LARGE,
    DocumentType,
    check_size,
    clean_filename,
    detect_type,
    extract_text,
)
from parley_common.knowledge.store import Document, KnowledgeStore

__all__ = ["DEFAULT_MAX_DOCUMENT_BYTES", "MAX_DOCUMENT_BYTES_ENV", "KnowledgeIndexer"]

MAX_DOCUMENT_BYTES_ENV = "KNOWLEDGE_MAX_DOCUMENT_BYTES"
DEFAULT_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
# About 240,000 words, a minute of embedding on one core: a compressed PDF under the byte
# limit can hold far more text than that.
MAX_CHUNKS_ENV = "KNOWLEDGE_MAX_CHUNKS"
DEFAULT_MAX_CHUNKS = 2000


def max_document_bytes() -> int:
    """The largest document accepted (``KNOWLEDGE_MAX_DOCUMENT_BYTES``, 5 MiB by default)."""
    return int(os.environ.get(MAX_DOCUMENT_BYTES_ENV, DEFAULT_MAX_DOCUMENT_BYTES))


class KnowledgeIndexer:
    """Turns documents into searchable chunks of one chatbot."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        max_bytes: int | None = None,
        max_chunks: int | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.max_bytes = max_bytes if max_bytes is not None else max_document_bytes()
        self.max_chunks = max_chunks or int(os.environ.get(MAX_CHUNKS_ENV, DEFAULT_MAX_CHUNKS))

    async def upload(
        self,
        *,
        user_id: str,
        chatbot_id: str,
        filename: str,
        media_type: str | None,
        data: bytes,
    ) -> Document:
        """Index and store a new document. ``BadInputError`` for a file that is too large,
        empty, of an unsupported type or unreadable (the code says which)."""
        check_size(len(data), self.max_bytes)
        kind = detect_type(filename, media_type, data)
        text, chunks, vectors = await self._index(data, kind)
        return await self.store.add(
            user_id=user_id,
            chatbot_id=chatbot_id,
            filename=clean_filename(filename),
            media_type=kind.value,
            content=data,
            text_chars=len(text),
            chunks=chunks,
            vectors=vectors,
            embedding_model=self.embedder.name,
        )

    async def reindex(self, document: Document) -> Document | None:
        """Chunk and embed the document's stored bytes again (after a model or chunking
        change); None when it was deleted meanwhile."""
        data = await self.store.content(document.id)
        if data is None:
            return None
        text, chunks, vectors = await self._index(data, DocumentType(document.media_type))
        return await self.store.reindexed(
            document,
            text_chars=len(text),
            chunks=chunks,
            vectors=vectors,
            embedding_model=self.embedder.name,
        )

    async def _index(
        self, data: bytes, kind: DocumentType
    ) -> tuple[str, list[Chunk], npt.NDArray[np.float32]]:
        text = await asyncio.to_thread(extract_text, data, kind)
        chunks = chunk_text(text)
        if len(chunks) > self.max_chunks:
            raise BadInputError(
                f"the document's text makes {len(chunks)} passages; at most {self.max_chunks}"
                " are indexed per document: split it",
                code=DOCUMENT_TOO_LARGE,
            )
        vectors = await self.embedder.embed([c.text for c in chunks])
        return text, chunks, vectors
