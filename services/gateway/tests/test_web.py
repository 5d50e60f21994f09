"""The call page and its assets are served by the gateway, the library from clients/js."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/", "/voice"])
async def test_call_page(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="start-call"' in page.text
    assert "/static/app.js" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.js",
        "/static/lib/parley-client.js",
        "/static/lib/audio.js",
        "/static/lib/worklets/capture-processor.js",
        "/static/lib/worklets/playback-processor.js",
    ],
)
async def test_scripts_are_javascript(client: httpx.AsyncClient, path: str) -> None:
    asset = await client.get(path)
    assert asset.status_code == 200, path
    assert "javascript" in asset.headers["content-type"]


async def test_missing_asset_is_a_json_404(client: httpx.AsyncClient) -> None:
    missing = await client.get("/static/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
