"""A chatbot's knowledge base: documents turned into text, cut into chunks, embedded by a local
model and stored in PostgreSQL with pgvector, then searched by similarity within one chatbot.

One module per job: ``extract`` (bytes to text), ``chunking`` (text to passages),
``embedder`` (passages to vectors, off the event loop), ``store`` (rows and the search),
``indexer`` (the pipeline that ties them for an upload or a re-index).
"""

from parley_common.knowledge.chunking import Chunk, chunk_text
from parley_common.knowledge.embedder import EMBEDDING_DIMENSION, Embedder, LocalEmbedder
from parley_common.knowledge.extract import (
    DOCUMENT_EMPTY,
    DOCUMENT_TOO_LARGE,
    DOCUMENT_UNREADABLE,
    DOCUMENT_UNSUPPORTED,
    DocumentType,
    detect_type,
    extract_text,
)
from parley_common.knowledge.indexer import KnowledgeIndexer
from parley_common.knowledge.store import Document, KnowledgeStore, RetrievedChunk

__all__ = [
    "DOCUMENT_EMPTY",
    "DOCUMENT_TOO_LARGE",
    "DOCUMENT_UNREADABLE",
    "DOCUMENT_UNSUPPORTED",
    "EMBEDDING_DIMENSION",
    "Chunk",
    "Document",
    "DocumentType",
    "Embedder",
    "KnowledgeIndexer",
    "KnowledgeStore",
    "LocalEmbedder",
    "RetrievedChunk",
    "chunk_text",
    "detect_type",
    "extract_text",
]
