"""Bad input gets a 4xx with the common JSON error body, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


async def _session_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM voice_sessions"))


@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/voice/start"])
async def test_malformed_json(client: httpx.AsyncClient, pool: asyncpg.Pool, path: str) -> None:
    before = await _session_count(pool)
    response = await client.post(
        path, content=b'{"user_id": "x",', headers={"content-type": "application/json"}
    )
    _assert_error(response, 400, "malformed_json")
    assert await _session_count(pool) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "favourite_colour": "blue"}, "favourite_colour"),
        ({"response_style": "verbose"}, "response_style"),
        ({"interrupt_sensitivity": 3}, "interrupt_sensitivity"),
        ({"user_id": 42}, "user_id"),
        ({"stt_provider": "nonexistent"}, "stt_provider"),
        ({"output_sample_rate": 12345}, "output_sample_rate"),
        ({"system_prompt": "x" * 9000}, "system_prompt"),
        # PostgreSQL cannot store NUL: refused up front, not a 500 at the INSERT.
        ({"user_id": "a\u0000b"}, "user_id"),
        ({"chatbotId": "bot\u0000"}, "chatbotId"),
    ],
)
async def test_unknown_or_wrong_typed_fields(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, object], field: str
) -> None:
    before = await _session_count(pool)
    error = _assert_error(await client.post("/api/v1/sessions", json=body), 422, "validation_error")
    locations = [d["loc"] for d in error["error"]["details"]]
    assert any(field in loc for loc in locations), locations
    assert await _session_count(pool) == before


async def test_body_must_be_an_object(client: httpx.AsyncClient) -> None:
    _assert_error(await client.post("/api/v1/sessions", json=[1, 2]), 422, "validation_error")


@pytest.mark.parametrize("sid", [str(uuid.uuid4()), "not-a-uuid"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sessions/{sid}"),
        ("POST", "/api/v1/sessions/{sid}/end"),
        ("GET", "/api/v1/sessions/{sid}/transcript"),
        ("GET", "/api/voice/{sid}/transcript"),
        ("POST", "/api/voice/{sid}/end"),
    ],
)
async def test_unknown_session_ids(
    client: httpx.AsyncClient, method: str, path: str, sid: str
) -> None:
    response = await client.request(method, path.format(sid=sid))
    _assert_error(response, 404, "session_not_found")


async def test_body_over_the_limit_by_content_length(
    client: httpx.AsyncClient, pool: asyncpg.Pool, max_body_bytes: int
) -> None:
    before = await _session_count(pool)
    big = b'{"user_id": "' + b"x" * (max_body_bytes + 10) + b'"}'
    response = await client.post(
        "/api/v1/sessions", content=big, headers={"content-type": "application/json"}
    )
    _assert_error(response, 413, "payload_too_large")
    assert await _session_count(pool) == before


async def test_body_over_the_limit_when_chunked(
    client: httpx.AsyncClient, max_body_bytes: int
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_id": "'
        for _ in range(max_body_bytes // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(
        "/api/v1/sessions", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_error(response, 413, "payload_too_large")


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/api/v1/nope"), 404, "not_found")
    _assert_error(await client.delete("/api/v1/sessions"), 405, "method_not_allowed")
