"""S2's per-chatbot voice configuration: read (defaults before any write), replaced,
validated, and applied as the defaults of every later session of that chatbot, where a
session's own options win."""

from __future__ import annotations

import uuid

import httpx


async def test_a_chatbots_config_is_stored_and_becomes_its_sessions_defaults(
    platform_url: str,
) -> None:
    chatbot = f"chatbot-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        fresh = (await client.get(f"/api/v1/voice/config/{chatbot}")).json()
        assert fresh["chatbot_id"] == chatbot
        assert (fresh["tts_speed"], fresh["tts_pitch"], fresh["audio_format"]) == (1.0, 0.0, "webm")

        body = {
            "tts_voice": "scripted",
            "tts_speed": 1.2,
            "tts_pitch": 0.5,
            "stt_language": "fr",
            "audio_format": "mp3",
            "stt_provider": "scripted",
            "llm_provider": "scripted",
            "tts_provider": "scripted",
            "response_style": "concise",
        }
        stored = (await client.put(f"/api/v1/voice/config/{chatbot}", json=body)).json()
        assert {k: stored[k] for k in body} == body
        assert (await client.get(f"/api/v1/voice/config/{chatbot}")).json() == stored

        # A session of the chatbot starts with its configuration...
        session = await client.post("/api/v1/sessions", json={"chatbot_id": chatbot})
        assert session.status_code == 201, session.text
        config = session.json()["config"]
        assert (config["voice"], config["speed"], config["language"]) == ("scripted", 1.2, "fr")
        assert (config["tts_provider"], config["response_style"]) == ("scripted", "concise")
        # ...except where the session chose for itself.
        own = await client.post(
            "/api/v1/sessions", json={"chatbot_id": chatbot, "response_style": "detailed"}
        )
        assert own.json()["config"]["response_style"] == "detailed"
        assert own.json()["config"]["speed"] == 1.2


async def test_a_bad_config_is_refused_and_the_stored_one_kept(platform_url: str) -> None:
    chatbot = f"chatbot-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=platform_url, timeout=30) as client:
        good = await client.put(f"/api/v1/voice/config/{chatbot}", json={"tts_speed": 1.5})
        assert good.status_code == 200
        for bad in (
            {"tts_speed": 3.0},
            {"tts_pitch": -5},
            {"audio_format": "aiff"},
            {"favourite": 1},
        ):
            refused = await client.put(f"/api/v1/voice/config/{chatbot}", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["success"] is False
        kept = (await client.get(f"/api/v1/voice/config/{chatbot}")).json()
        assert kept["tts_speed"] == 1.5
