"""A chatbot's documents over real HTTP against a gateway that requires tokens: upload (txt,
md, html, pdf), list, get, re-index and delete; another user's chatbot and documents do not
exist for them; unusable files get 415, 413 or 422 with the one error shape."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import SecuredPlatform
from tests.conversation.knowledge_docs import DOCUMENTS, tiny_pdf


@pytest.fixture
async def http(secured_platform: SecuredPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=60) as client:
        yield client


def _path(chatbot: str, *rest: str) -> str:
    return "/".join((f"/api/v1/chatbots/{chatbot}/documents", *rest))


async def _upload(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    chatbot: str,
    filename: str,
    data: bytes,
    media_type: str = "application/octet-stream",
) -> httpx.Response:
    return await http.post(
        _path(chatbot), files={"file": (filename, data, media_type)}, headers=headers
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    return error


async def test_documents_are_uploaded_listed_reindexed_and_deleted(
    secured_platform: SecuredPlatform, http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    alice = secured_platform.headers("alice")
    chatbot = f"bot-{uuid.uuid4()}"
    assert (await http.get(_path(chatbot), headers=alice)).json()["documents"] == []

    pdf = tiny_pdf("The annual retreat takes place in Tromso every September.")
    uploads = [*((d.filename, d.data, d.media_type) for d in DOCUMENTS)]
    uploads.append(("retreat.pdf", pdf, "application/pdf"))
    created = []
    for filename, data, media_type in uploads:
        response = await _upload(http, alice, chatbot, filename, data, media_type)
        assert response.status_code == 201, response.text
        created.append(response.json())
    assert [d["media_type"] for d in created] == [
        "text/plain",
        "text/markdown",
        "text/html",
        "application/pdf",
    ]
    for document, (_, data, _) in zip(created, uploads, strict=True):
        assert document["chatbot_id"] == chatbot
        assert document["size_bytes"] == len(data)
        assert document["chunk_count"] >= 1
        assert document["embedding_model"] == "all-MiniLM-L6-v2-int8"
        stored = await pool.fetchval(
            "SELECT count(*) FROM knowledge_chunks WHERE document_id = $1 AND user_id = 'alice'",
            uuid.UUID(document["id"]),
        )
        assert stored == document["chunk_count"]
    pdf_text = await pool.fetchval(
        "SELECT text FROM knowledge_chunks WHERE document_id = $1", uuid.UUID(created[3]["id"])
    )
    assert pdf_text == "The annual retreat takes place in Tromso every September."
    # The HTML's script and style are not knowledge.
    html_chunks = await pool.fetch(
        "SELECT text FROM knowledge_chunks WHERE document_id = $1", uuid.UUID(created[2]["id"])
    )
    assert all("secret" not in r["text"] and "color" not in r["text"] for r in html_chunks)

    listed = (await http.get(_path(chatbot), headers=alice)).json()
    assert listed["chatbot_id"] == chatbot
    assert [d["id"] for d in listed["documents"]] == [d["id"] for d in created]
    one = await http.get(_path(chatbot, created[1]["id"]), headers=alice)
    assert one.status_code == 200
    assert one.json() == created[1]

    reindexed = await http.post(_path(chatbot, created[0]["id"], "reindex"), headers=alice)
    assert reindexed.status_code == 200, reindexed.text
    assert reindexed.json()["chunk_count"] == created[0]["chunk_count"]
    assert reindexed.json()["indexed_at"] > created[0]["indexed_at"]

    deleted = await http.delete(_path(chatbot, created[0]["id"]), headers=alice)
    assert deleted.status_code == 204
    remaining = (await http.get(_path(chatbot), headers=alice)).json()["documents"]
    assert [d["id"] for d in remaining] == [d["id"] for d in created[1:]]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM knowledge_chunks WHERE document_id = $1",
            uuid.UUID(created[0]["id"]),
        )
        == 0
    )
    again = await http.delete(_path(chatbot, created[0]["id"]), headers=alice)
    assert again.status_code == 404
    assert _error(again)["code"] == "document_not_found"
    gone = await http.post(_path(chatbot, created[0]["id"], "reindex"), headers=alice)
    assert gone.status_code == 404


async def test_another_users_chatbot_and_documents_do_not_exist_for_them(
    secured_platform: SecuredPlatform, http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    alice, bob = secured_platform.headers("alice"), secured_platform.headers("bob")
    chatbot = f"bot-{uuid.uuid4()}"
    doc = DOCUMENTS[0]
    created = (await _upload(http, alice, chatbot, doc.filename, doc.data)).json()
    document = created["id"]

    attempts = [
        await http.get(_path(chatbot), headers=bob),
        await http.get(_path(chatbot, document), headers=bob),
        await http.delete(_path(chatbot, document), headers=bob),
        await http.post(_path(chatbot, document, "reindex"), headers=bob),
        await _upload(http, bob, chatbot, "mine.txt", b"Bob's own facts."),
    ]
    for response in attempts:
        assert response.status_code == 404, response.request
        assert _error(response)["code"] == "chatbot_not_found"
    # Bob's own chatbot does not reach alice's document either.
    own = f"bot-{uuid.uuid4()}"
    assert (await _upload(http, bob, own, "mine.txt", b"Bob's own facts.")).status_code == 201
    crossed = await http.get(_path(own, document), headers=bob)
    assert crossed.status_code == 404
    assert _error(crossed)["code"] == "document_not_found"
    assert (await http.get(_path(chatbot), headers=alice)).json()["documents"] == [created]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM knowledge_documents WHERE chatbot_id = $1", chatbot
        )
        == 1
    )

    # A chatbot whose voice configuration is alice's is hers, documents or not.
    configured = f"bot-{uuid.uuid4()}"
    stored = await http.put(f"/api/v1/voice/config/{configured}", json={}, headers=alice)
    assert stored.status_code == 200
    refused = await _upload(http, bob, configured, "mine.txt", b"Bob's own facts.")
    assert refused.status_code == 404
    # No token: 401, as on every route.
    assert (await http.get(_path(chatbot))).status_code == 401


@pytest.mark.parametrize(
    ("filename", "data", "media_type", "status", "code"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n", "image/png", 415, "document_unsupported"),
        ("fake.pdf", b"plain words", "application/pdf", 415, "document_unsupported"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "text/plain", 415, "document_unsupported"),
        ("empty.txt", b"", "text/plain", 422, "document_empty"),
        ("blank.md", b"  \n\n  \t\n", "text/markdown", 422, "document_empty"),
        ("broken.pdf", b"%PDF-1.7\n garbage", "application/pdf", 422, "document_unreadable"),
    ],
)
async def test_unusable_files_are_refused_with_a_status_and_a_code(
    secured_platform: SecuredPlatform,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    filename: str,
    data: bytes,
    media_type: str,
    status: int,
    code: str,
) -> None:
    chatbot = f"bot-{uuid.uuid4()}"
    response = await _upload(
        http, secured_platform.headers("alice"), chatbot, filename, data, media_type
    )
    assert response.status_code == status, response.text
    error = _error(response)
    assert error["code"] == code
    assert error["message"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM knowledge_documents WHERE chatbot_id = $1", chatbot
        )
        == 0
    )


async def test_a_document_over_the_size_limit_is_413(
    secured_platform: SecuredPlatform, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KNOWLEDGE_MAX_DOCUMENT_BYTES", "1000")
    alice = secured_platform.headers("alice")
    chatbot = f"bot-{uuid.uuid4()}"
    big = await _upload(http, alice, chatbot, "big.txt", b"word " * 201, "text/plain")
    assert big.status_code == 413
    assert _error(big)["code"] == "document_too_large"
    fits = await _upload(http, alice, chatbot, "fits.txt", b"word " * 200, "text/plain")
    assert fits.status_code == 201, fits.text
    # Without a file at all: the schema's 422.
    missing = await http.post(_path(chatbot), headers=alice, data={"x": "y"})
    assert missing.status_code == 422
    assert _error(missing)["code"] == "validation_error"
