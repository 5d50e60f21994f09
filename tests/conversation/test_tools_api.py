"""A chatbot's tools over REST (``/api/v1/chatbots/{chatbot_id}/tools``) through a gateway
that requires tokens: created, listed, read, replaced and deleted by the chatbot's owner;
the webhook's secret accepted and never returned; hosts off ``PARLEY_TOOL_HOSTS``, invalid
schemas and unknown built-ins refused; another user sees no such chatbot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from conftest import SecuredPlatform
from parley_common.tool_hosts import HOSTS_ENV

SECRET = "Bearer very-secret-webhook-token"
WEBHOOK = {
    "name": "lookup_order",
    "description": "Look up an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
    "url": "https://hooks.example.com/orders?key=abc",
    "timeout_s": 3.5,
    "secret_header": "authorization",
    "secret_value": SECRET,
}


@pytest.fixture(autouse=True)
def _allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTS_ENV, "hooks.example.com, 127.0.0.1:8099")


@pytest.fixture
async def alice(secured_platform: SecuredPlatform) -> AsyncIterator[httpx.AsyncClient]:
    headers = secured_platform.headers("alice")
    async with httpx.AsyncClient(base_url=secured_platform.url, headers=headers) as client:
        yield client


@pytest.fixture
def chatbot() -> str:
    return f"/api/v1/chatbots/bot-{uuid.uuid4().hex[:8]}/tools"


async def test_the_owner_manages_tools_and_the_secret_is_never_returned(
    alice: httpx.AsyncClient, chatbot: str
) -> None:
    created = await alice.post(chatbot, json=WEBHOOK)
    assert created.status_code == 201, created.text
    tool = created.json()
    assert SECRET not in created.text
    assert (tool["name"], tool["kind"], tool["has_secret"]) == ("lookup_order", "webhook", True)
    assert tool["secret_header"] == "authorization"
    assert "secret_value" not in tool
    builtin = await alice.post(chatbot, json={"name": "current_time", "kind": "builtin"})
    assert builtin.status_code == 201, builtin.text

    listed = await alice.get(chatbot)
    assert [t["name"] for t in listed.json()] == ["current_time", "lookup_order"]
    assert SECRET not in listed.text
    assert (await alice.get(f"{chatbot}/{tool['id']}")).json() == tool

    # Replaced without a secret: the stored one is kept, and still not shown.
    changed = {k: v for k, v in WEBHOOK.items() if k != "secret_value"} | {"timeout_s": 8.0}
    replaced = await alice.put(f"{chatbot}/{tool['id']}", json=changed)
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["timeout_s"], replaced.json()["has_secret"]) == (8.0, True)
    assert SECRET not in replaced.text
    cleared = await alice.put(
        f"{chatbot}/{tool['id']}", json={k: v for k, v in changed.items() if k != "secret_header"}
    )
    assert cleared.json()["has_secret"] is False

    twice = await alice.post(chatbot, json=WEBHOOK)
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "tool_exists")
    assert (await alice.delete(f"{chatbot}/{tool['id']}")).status_code == 204
    gone = await alice.get(f"{chatbot}/{tool['id']}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "tool_not_found")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"url": "https://evil.example.net/steal"}, "tool_host_not_allowed"),
        ({"url": "http://127.0.0.1:8100/tool"}, "tool_host_not_allowed"),  # listed with 8099
        ({"url": "ftp://hooks.example.com/x"}, "tool_url_invalid"),
    ],
)
async def test_a_webhook_off_the_allow_list_is_refused(
    alice: httpx.AsyncClient, chatbot: str, change: dict[str, Any], code: str
) -> None:
    refused = await alice.post(chatbot, json=WEBHOOK | change)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == code
    assert SECRET not in refused.text
    assert (await alice.get(chatbot)).json() == []


@pytest.mark.parametrize(
    "body",
    [
        WEBHOOK | {"parameters": {"type": "array"}},
        WEBHOOK | {"parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}},
        WEBHOOK | {"name": "has spaces"},
        WEBHOOK | {"timeout_s": 60},
        {"name": "launch_rockets", "kind": "builtin"},
        {"name": "current_time", "kind": "builtin", "url": "https://hooks.example.com/"},
        {"name": "current_time", "kind": "builtin", "timezone": "Mars/Olympus"},
        {"name": "end_call", "url": "https://hooks.example.com/"},
    ],
)
async def test_an_invalid_tool_is_refused(
    alice: httpx.AsyncClient, chatbot: str, body: dict[str, Any]
) -> None:
    refused = await alice.post(chatbot, json=body)

    assert refused.status_code == 422, refused.text
    assert SECRET not in refused.text


async def test_another_user_finds_no_such_chatbot(
    alice: httpx.AsyncClient, chatbot: str, secured_platform: SecuredPlatform
) -> None:
    tool = (await alice.post(chatbot, json=WEBHOOK)).json()
    headers = secured_platform.headers("bob")
    async with httpx.AsyncClient(base_url=secured_platform.url, headers=headers) as bob:
        for response in (
            await bob.get(chatbot),
            await bob.get(f"{chatbot}/{tool['id']}"),
            await bob.post(chatbot, json=WEBHOOK | {"name": "other"}),
            await bob.delete(f"{chatbot}/{tool['id']}"),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "chatbot_not_found"
    async with httpx.AsyncClient(base_url=secured_platform.url) as nobody:
        assert (await nobody.get(chatbot)).status_code == 401
    assert [t["name"] for t in (await alice.get(chatbot)).json()] == ["lookup_order"]
