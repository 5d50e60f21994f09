"""A chatbot's knowledge base: ``/api/v1/chatbots/{chatbot_id}/documents``.

Uploads are indexed before the answer (extracted, chunked, embedded by the local model off
the event loop, stored with pgvector), so a listed document is searchable. A chatbot belongs
to the user who first stored its voice configuration or its first document; to anyone else
it does not exist, nor do its documents.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, File, Response, UploadFile

from parley_common.contracts.knowledge import DocumentsView, DocumentView
from parley_common.contracts.rest import ErrorBody
from parley_common.errors import NotFoundError
from parley_common.knowledge import Document, KnowledgeIndexer, KnowledgeStore
from parley_common.knowledge.embedder import local_embedder
from parley_common.knowledge.extract import check_size
from parley_common.tokens import Principal
from parley_gateway.auth import CurrentUser
from parley_gateway.routes.deps import GatewayDep
from parley_gateway.sessions.chatbots import check_owner

router = APIRouter(prefix="/api/v1/chatbots/{chatbot_id}/documents", tags=["knowledge"])

#: The owner of documents uploaded through a gateway without authentication.
ANONYMOUS_OWNER = "anonymous"


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_NOT_FOUND = _error("No such chatbot or document, or another user's")
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _NOT_FOUND,
    413: _error(
        "Over KNOWLEDGE_MAX_DOCUMENT_BYTES, or text of more than KNOWLEDGE_MAX_CHUNKS passages"
        " (document_too_large)"
    ),
    415: _error("Not txt, md, html or pdf, or not what it says (document_unsupported)"),
    422: _error("An empty document (document_empty) or an unreadable PDF (document_unreadable)"),
}


def _view(document: Document) -> DocumentView:
    return DocumentView(
        id=document.id,
        chatbot_id=document.chatbot_id,
        filename=document.filename,
        media_type=document.media_type,
        size_bytes=document.size_bytes,
        text_chars=document.text_chars,
        chunk_count=document.chunk_count,
        embedding_model=document.embedding_model,
        created_at=document.created_at,
        indexed_at=document.indexed_at,
    )


def _indexer(pool: asyncpg.Pool) -> KnowledgeIndexer:
    return KnowledgeIndexer(KnowledgeStore(pool), local_embedder())


def _filter(principal: Principal) -> str | None:
    """The owner to filter rows by: none for an admin or without authentication."""
    return None if principal.user_id is None or principal.admin else principal.user_id


async def chatbot_owner(pool: asyncpg.Pool, chatbot_id: str, principal: Principal) -> str:
    """The user who owns ``chatbot_id`` (``sessions.chatbots``), the caller when nobody
    does yet; NotFoundError when it is another user's."""
    owner = await check_owner(pool, chatbot_id, principal)
    return owner or principal.user_id or ANONYMOUS_OWNER


def _no_document(document_id: str) -> NotFoundError:
    return NotFoundError(f"document {document_id} does not exist", code="document_not_found")


@router.post("", status_code=201, response_model=DocumentView, responses=_UPLOAD_ERRORS)
async def upload_document(
    gateway: GatewayDep,
    principal: CurrentUser,
    chatbot_id: str,
    file: Annotated[UploadFile, File(description="a .txt, .md, .html or .pdf document")],
) -> DocumentView:
    """Add a document to the chatbot's knowledge base; answered once it is searchable."""
    owner = await chatbot_owner(gateway.pool, chatbot_id, principal)
    indexer = _indexer(gateway.pool)
    if file.size is not None:
        check_size(file.size, indexer.max_bytes)  # before a large file is read
    document = await indexer.upload(
        user_id=owner,
        chatbot_id=chatbot_id,
        filename=file.filename or "document",
        media_type=file.content_type,
        data=await file.read(),
    )
    return _view(document)


@router.get("", response_model=DocumentsView, responses={404: _NOT_FOUND})
async def list_documents(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str
) -> DocumentsView:
    """The chatbot's documents, oldest first (none yet: an empty list)."""
    await chatbot_owner(gateway.pool, chatbot_id, principal)
    found = await KnowledgeStore(gateway.pool).documents(chatbot_id, _filter(principal))
    return DocumentsView(chatbot_id=chatbot_id, documents=[_view(d) for d in found])


@router.get("/{document_id}", response_model=DocumentView, responses={404: _NOT_FOUND})
async def get_document(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, document_id: str
) -> DocumentView:
    """One document of the chatbot."""
    await chatbot_owner(gateway.pool, chatbot_id, principal)
    found = await KnowledgeStore(gateway.pool).get(chatbot_id, document_id, _filter(principal))
    if found is None:
        raise _no_document(document_id)
    return _view(found)


@router.delete("/{document_id}", status_code=204, responses={404: _NOT_FOUND})
async def delete_document(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, document_id: str
) -> Response:
    """Remove a document and its passages: later answers no longer use it."""
    await chatbot_owner(gateway.pool, chatbot_id, principal)
    store = KnowledgeStore(gateway.pool)
    if not await store.delete(chatbot_id, document_id, _filter(principal)):
        raise _no_document(document_id)
    return Response(status_code=204)


@router.post("/{document_id}/reindex", response_model=DocumentView, responses={404: _NOT_FOUND})
async def reindex_document(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, document_id: str
) -> DocumentView:
    """Extract, chunk and embed the document's stored upload again (after an upgrade of the
    extractor, the chunking or the model)."""
    await chatbot_owner(gateway.pool, chatbot_id, principal)
    indexer = _indexer(gateway.pool)
    found = await indexer.store.get(chatbot_id, document_id, _filter(principal))
    reindexed = await indexer.reindex(found) if found is not None else None
    if reindexed is None:
        raise _no_document(document_id)
    return _view(reindexed)
