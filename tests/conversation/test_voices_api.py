"""Voices per provider through the three route shapes, answered by a TTS worker."""

from __future__ import annotations

import httpx
import pytest


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


async def test_unknown_and_unavailable_providers(
    platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        unknown = await client.get("/api/v1/voices", params={"provider": "acme"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_provider"
        cloud = await client.get("/api/voice/voices/elevenlabs")
        assert cloud.status_code == 422
        assert cloud.json()["error"]["code"] == "provider_unavailable"
        assert "ELEVENLABS_API_KEY" in cloud.json()["error"]["message"]


async def test_providers_say_which_are_usable_and_why_not(
    platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        providers = (await client.get("/api/v1/providers")).json()
        by_name = {kind: {p["name"]: p for p in providers[kind]} for kind in ("stt", "llm", "tts")}
        assert by_name["stt"]["scripted"]["available"]  # this platform enables them
        assert by_name["tts"]["scripted"] == {"name": "scripted", "available": True, "reason": None}
        openai = by_name["llm"]["openai"]
        assert openai["available"] is False
        assert openai["reason"]
        # Choosing an unusable provider fails at session start with the same reason.
        refused = await client.post("/api/v1/sessions", json={"llm_provider": "openai"})
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "provider_unavailable"
        assert openai["reason"] in refused.json()["error"]["message"]


async def test_a_session_with_an_unknown_voice_is_refused(platform_url: str) -> None:
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        refused = await client.post("/api/v1/sessions", json={"voice": "nobody"})
    assert refused.status_code == 422
    assert "nobody" in refused.json()["error"]["message"]
