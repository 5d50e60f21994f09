"""A webhook tool against a local webhook server: the arguments POSTed as JSON with the
secret header, the answer's body returned (cut to a bounded size), and every failure a
``ParleyError`` that names the tool and never the URL or the secret."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from parley_common.errors import BadInputError, ParleyError, ProviderFailedError
from parley_common.tool_hosts import HOSTS_ENV
from parley_emulators import webhook
from parley_emulators.base import running
from parley_launcher.embedded.process import free_port
from parley_llm.providers.base import ToolSpec
from parley_llm.tools import WebhookTool
from parley_llm.tools.webhook import MAX_RESULT_CHARS

SECRET = "token-that-must-stay-private"
SPEC = ToolSpec("stock", "Stock of an item.", {"type": "object"})


@pytest.fixture
async def hook(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[webhook.WebhookState, str]]:
    monkeypatch.setenv(HOSTS_ENV, "127.0.0.1")
    state = webhook.WebhookState(result={"in_stock": 12})
    async with running(webhook.app(state)) as url:
        yield state, url + webhook.TOOL_PATH


def _tool(url: str) -> WebhookTool:
    return WebhookTool(SPEC, url, 2.0, secret_header="x-api-key", secret_value=SECRET)


def _clean(error: ParleyError, url: str) -> None:
    assert "stock" in error.message
    assert SECRET not in error.message
    assert url not in error.message


async def test_the_arguments_go_out_as_json_with_the_secret(
    hook: tuple[webhook.WebhookState, str],
) -> None:
    state, url = hook

    outcome = await _tool(url).run({"item": "flour", "kg": 5})

    assert json.loads(outcome.content) == {"in_stock": 12}
    sent = state.last(webhook.TOOL_PATH)
    assert sent.body == {"item": "flour", "kg": 5}
    assert sent.headers["x-api-key"] == SECRET
    assert sent.headers["content-type"] == "application/json"


async def test_a_huge_answer_is_cut(hook: tuple[webhook.WebhookState, str]) -> None:
    state, url = hook
    state.result = {"text": "é" * 100_000}

    outcome = await _tool(url).run({})

    assert len(outcome.content) == MAX_RESULT_CHARS
    assert outcome.content.startswith('{"text":"éé')


async def test_failures_name_the_tool_not_the_url_or_secret(
    hook: tuple[webhook.WebhookState, str],
) -> None:
    state, url = hook
    state.status = 500
    with pytest.raises(ProviderFailedError) as failed:
        await _tool(url).run({})
    assert "answered HTTP 500" in failed.value.message
    _clean(failed.value, url)

    closed = f"http://127.0.0.1:{free_port()}/tool"
    with pytest.raises(ProviderFailedError) as unreachable:
        await _tool(closed).run({})
    assert "could not be reached" in unreachable.value.message
    _clean(unreachable.value, closed)


async def test_a_host_off_the_list_is_never_called(
    hook: tuple[webhook.WebhookState, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = hook
    monkeypatch.setenv(HOSTS_ENV, "api.example.com")

    with pytest.raises(BadInputError) as refused:
        await _tool(url).run({})

    assert refused.value.code == "tool_host_not_allowed"
    assert state.requests == []
