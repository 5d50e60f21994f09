"""``/api/v1/providers`` when no worker answers for a service: nothing is advertised."""

from __future__ import annotations

import httpx

from parley_common.contracts.session import LlmProvider, SttProvider, TtsProvider


async def test_without_workers_every_provider_is_unavailable(client: httpx.AsyncClient) -> None:
    # These tests' workers hold sessions but answer no provider queries, like a deployment
    # whose stt/llm/tts services are not running.
    body = (await client.get("/api/v1/providers")).json()
    for kind, names in (("stt", SttProvider), ("llm", LlmProvider), ("tts", TtsProvider)):
        listed = {p["name"]: p for p in body[kind]}
        assert set(listed) <= {n.value for n in names}
        assert "local" in listed
        assert all(p["available"] is False for p in listed.values())
        assert listed["local"]["reason"] == f"no {kind} worker is running"
