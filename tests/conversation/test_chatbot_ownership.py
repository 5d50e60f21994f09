"""A chatbot belongs to whoever first stored anything of it (its voice configuration, a
document, a tool), and that counts for every route about it: another user finds no such
chatbot whichever way it was claimed, and cannot claim it another way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from conftest import SecuredPlatform
from parley_common.tool_hosts import HOSTS_ENV

TOOL = {
    "name": "lookup_order",
    "description": "Look up an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    "url": "https://hooks.example.com/orders",
}
Claim = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def _by_config(client: httpx.AsyncClient, chatbot: str) -> httpx.Response:
    return await client.put(f"/api/v1/voice/config/{chatbot}", json={"tts_speed": 1.1})


async def _by_document(client: httpx.AsyncClient, chatbot: str) -> httpx.Response:
    files = {"file": ("notes.txt", b"The shop opens at nine in the morning.", "text/plain")}
    return await client.post(f"/api/v1/chatbots/{chatbot}/documents", files=files)


async def _by_tool(client: httpx.AsyncClient, chatbot: str) -> httpx.Response:
    return await client.post(f"/api/v1/chatbots/{chatbot}/tools", json=TOOL)


CLAIMS: dict[str, Claim] = {"config": _by_config, "document": _by_document, "tool": _by_tool}


@pytest.fixture
async def users(
    secured_platform: SecuredPlatform, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    monkeypatch.setenv(HOSTS_ENV, "hooks.example.com")
    url, suffix = secured_platform.url, uuid.uuid4().hex[:8]
    async with (
        httpx.AsyncClient(base_url=url, headers=secured_platform.headers(f"a-{suffix}")) as a,
        httpx.AsyncClient(base_url=url, headers=secured_platform.headers(f"b-{suffix}")) as b,
    ):
        yield a, b


@pytest.mark.parametrize("claimed_by", sorted(CLAIMS))
async def test_a_chatbot_claimed_one_way_is_nobody_elses_any_way(
    users: tuple[httpx.AsyncClient, httpx.AsyncClient], claimed_by: str
) -> None:
    owner, other = users
    chatbot = f"bot-{uuid.uuid4().hex[:8]}"
    claimed = await CLAIMS[claimed_by](owner, chatbot)
    assert claimed.status_code in (200, 201), claimed.text

    for way, claim in CLAIMS.items():
        refused = await claim(other, chatbot)
        assert refused.status_code == 404, (way, refused.text)
        assert refused.json()["error"]["code"] == "chatbot_not_found"
    for path in (f"/api/v1/voice/config/{chatbot}", f"/api/v1/chatbots/{chatbot}/documents"):
        read = await other.get(path)
        assert read.status_code == 404, (path, read.text)
    # The owner goes on claiming it every other way.
    for way, claim in CLAIMS.items():
        if way != claimed_by:
            again = await claim(owner, chatbot)
            assert again.status_code in (200, 201), (way, again.text)
