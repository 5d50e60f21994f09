"""Knowledge bases on the wire: ``/api/v1/chatbots/{chatbot_id}/documents`` and the sources
an answer was given from (on its transcript entry)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["DocumentView", "DocumentsView", "KnowledgeSource"]


class DocumentView(BaseModel):
    """One document of a chatbot's knowledge base, indexed and searchable."""

    id: str
    chatbot_id: str
    filename: str
    media_type: str = Field(description="text/plain, text/markdown, text/html or application/pdf")
    size_bytes: int
    text_chars: int = Field(description="characters of text extracted from it")
    chunk_count: int = Field(description="passages it was cut into, each embedded")
    embedding_model: str
    created_at: datetime
    indexed_at: datetime


class DocumentsView(BaseModel):
    """A chatbot's documents, oldest first."""

    success: Literal[True] = True
    chatbot_id: str
    documents: list[DocumentView]


class KnowledgeSource(BaseModel):
    """A passage of a document that was put in the prompt of an answer."""

    chunk_id: int
    document_id: str
    filename: str
    ordinal: int = Field(description="the passage's place in its document, from 0")
    score: float = Field(description="cosine similarity to the question, -1..1")
