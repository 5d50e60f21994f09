"""Session lifecycle through the /api/v1 routes and S1's aliases."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from parley_common.testing import eventually
from parley_common.workers import SessionWorker


async def test_v1_create_get_end_transcript(
    client: httpx.AsyncClient, pool: asyncpg.Pool, workers: dict[str, SessionWorker]
) -> None:
    body = {
        "user_id": "user-1",
        "chatbot_id": "bot-9",
        "stt_provider": "local",
        "llm_provider": "local",
        "tts_provider": "local",
        "voice": "joe",
        "language": "en",
        "response_style": "concise",
        "interrupt_sensitivity": "high",
        "system_prompt": "You are terse.",
    }
    created = await client.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()
    sid = session["id"]
    assert session["status"] == "active"
    assert session["user_id"] == "user-1"
    assert session["chatbot_id"] == "bot-9"
    assert session["config"]["response_style"] == "concise"
    assert session["config"]["system_prompt"] == "You are terse."
    assert (
        session["ws_url"]
        == f"ws://{client.base_url.host}:{client.base_url.port}/api/v1/sessions/{sid}/ws"
    )
    for worker in workers.values():
        assert sid in worker.sessions

    fetched = await client.get(f"/api/v1/sessions/{sid}")
    assert fetched.status_code == 200
    assert fetched.json()["config"] == session["config"]

    transcript = await client.get(f"/api/v1/sessions/{sid}/transcript")
    # An active session has no summary yet.
    assert transcript.json() == {"session_id": sid, "entries": [], "summary": None}

    ended = await client.post(f"/api/v1/sessions/{sid}/end")
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    assert ended.json()["ended_at"] is not None
    assert ended.json()["duration_seconds"] >= 0
    row = await pool.fetchrow(
        "SELECT status, ended_at FROM voice_sessions WHERE id=$1", uuid.UUID(sid)
    )
    assert row is not None
    assert row["status"] == "ended"
    assert row["ended_at"] is not None

    again = await client.post(f"/api/v1/sessions/{sid}/end")
    assert again.status_code == 200
    assert again.json()["ended_at"] == ended.json()["ended_at"]


async def test_ending_releases_the_workers(
    client: httpx.AsyncClient, workers: dict[str, SessionWorker]
) -> None:
    sid = (await client.post("/api/v1/sessions", json={})).json()["id"]
    assert all(sid in w.sessions for w in workers.values())
    await client.post(f"/api/v1/sessions/{sid}/end")
    await eventually(lambda: not any(sid in w.sessions for w in workers.values()), 5)


async def test_ending_counts_turns_and_interruptions(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sid = (await client.post("/api/v1/sessions", json={"user_id": "counter"})).json()["id"]
    rows = [
        (1, "user", "hi", False),
        (1, "assistant", "hello the", True),
        (2, "user", "stop", False),
        (2, "assistant", "ok", False),
    ]
    for turn, role, text, interrupted in rows:
        await pool.execute(
            "INSERT INTO voice_transcripts (session_id, turn_id, role, text, interrupted)"
            " VALUES ($1, $2, $3, $4, $5)",
            uuid.UUID(sid),
            turn,
            role,
            text,
            interrupted,
        )
    ended = (await client.post(f"/api/v1/sessions/{sid}/end")).json()
    assert ended["total_turns"] == 2
    assert ended["interruptions_count"] == 1
    entries = (await client.get(f"/api/v1/sessions/{sid}/transcript")).json()["entries"]
    assert [(e["turn_id"], e["role"], e["interrupted"]) for e in entries] == [
        (1, "user", False),
        (1, "assistant", True),
        (2, "user", False),
        (2, "assistant", False),
    ]


async def test_s1_start_shape_and_aliases(client: httpx.AsyncClient) -> None:
    body = {
        "userId": "user-123",
        "sttProvider": "whisper",
        "ttsProvider": "openai",
        "voice": "alloy",
        "language": "en",
        "responseStyle": "conversational",
        "interruptSensitivity": "medium",
    }
    started = await client.post("/api/voice/start", json=body)
    assert started.status_code == 200, started.text
    payload = started.json()
    assert payload["success"] is True
    assert set(payload["session"]) == {"id", "status", "config", "wsUrl"}
    sid = payload["session"]["id"]
    assert payload["session"]["status"] == "active"
    assert payload["session"]["wsUrl"].endswith(f"/ws/voice/{sid}")
    assert payload["session"]["wsUrl"].startswith("ws://")
    assert payload["session"]["config"]["sttProvider"] == "whisper"
    assert payload["session"]["config"]["responseStyle"] == "conversational"

    # The same session through the native API.
    native = (await client.get(f"/api/v1/sessions/{sid}")).json()
    assert native["user_id"] == "user-123"
    assert native["config"]["tts_provider"] == "openai"

    transcript = (await client.get(f"/api/voice/{sid}/transcript")).json()
    assert transcript == {"success": True, "sessionId": sid, "transcript": [], "summary": None}

    ended = await client.post(f"/api/voice/{sid}/end")
    assert ended.status_code == 200
    assert ended.json()["success"] is True
    assert ended.json()["status"] == "ended"
    assert set(ended.json()["metrics"]) == {"durationSeconds", "totalTurns", "interruptionsCount"}
    assert (await client.get(f"/api/v1/sessions/{sid}")).json()["status"] == "ended"


async def test_health_reports_each_dependency(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["checks"] == {"nats": "ok", "postgres": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "python_gc_objects_collected_total" in metrics.text
    docs = await client.get("/openapi.json")
    assert "/api/v1/sessions" in docs.json()["paths"]
