"""Voices per provider through the three route shapes, answered by a TTS worker."""

from __future__ import annotations

import httpx


async def test_local_voice_is_listed_by_every_route(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        v1 = (await client.get("/api/v1/voices", params={"provider": "local"})).json()
        assert v1["provider"] == "local"
        assert [v["id"] for v in v1["voices"]] == ["joe"]
        s1 = (await client.get("/api/voice/voices/local")).json()
        assert s1["success"] is True
        assert s1["voices"] == v1["voices"]
        s2 = (await client.get("/api/v1/voice/voices")).json()
        assert s2["voices"] == v1["voices"]


async def test_unknown_and_unavailable_providers(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        unknown = await client.get("/api/v1/voices", params={"provider": "acme"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_provider"
        cloud = await client.get("/api/voice/voices/elevenlabs")
        assert cloud.status_code == 422
        assert "elevenlabs" in cloud.json()["error"]["message"]


async def test_providers_list_includes_test_doubles_only_when_enabled(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url) as client:
        providers = (await client.get("/api/v1/providers")).json()
    assert "local" in providers["stt"]
    assert "scripted" in providers["tts"]  # this platform enables them


async def test_a_session_with_an_unknown_voice_is_refused(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        refused = await client.post("/api/v1/sessions", json={"voice": "nobody"})
    assert refused.status_code == 422
    assert "nobody" in refused.json()["error"]["message"]
