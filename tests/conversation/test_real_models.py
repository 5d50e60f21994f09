"""Spoken questions answered by the real local models (Whisper, Qwen via llama.cpp, Piper),
streamed like a microphone. Run inside a network namespace by tests/e2e/test_offline.py, so
it also proves that nothing needs the internet."""

from __future__ import annotations

import os
import socket
import uuid

import asyncpg
import numpy as np
import pytest

from bench.audio import silence, speak, word_error_rate
from bench.call import Call

pytestmark = [
    pytest.mark.models,
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PARLEY_OFFLINE_RUN") != "1",
        reason="run by tests/e2e/test_offline.py inside a namespace without network",
    ),
]

QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "Can you tell me a fun fact about the moon?",
]
LOCAL = {"stt_provider": "local", "llm_provider": "local", "tts_provider": "local"}


def test_the_network_is_really_off() -> None:
    with pytest.raises(OSError, match="unreachable"):
        socket.create_connection(("1.1.1.1", 443), timeout=2)


async def test_spoken_questions_get_spoken_answers(platform_url: str, pool: asyncpg.Pool) -> None:
    call = await Call.start(
        platform_url, interrupt_sensitivity="high", response_style="concise", **LOCAL
    )
    try:
        for number, question in enumerate(QUESTIONS, start=1):
            mark = len(call.log)
            # Enough silence for the longest pause the end-of-turn model may allow at high.
            await call.say(await speak(question) + silence(1600))
            final = await call.wait_for(
                "transcript", lambda e: e["data"]["is_final"], within_s=60, after=mark
            )
            wer = word_error_rate(question, final["data"]["text"])
            assert wer <= 0.2, (question, final["data"]["text"], wer)
            assert 0 < final["data"]["confidence"] <= 1
            done = await call.wait_for(
                "response", lambda e: e["data"]["done"], within_s=90, after=mark
            )
            assert done["data"]["text"].strip(), "empty answer"
            turn = done["data"]["turn_id"]
            assert turn == number
            ended = await call.wait_for("audio_end", within_s=90, after=mark)
            assert ended["data"]["turn_id"] == turn
            pcm = b"".join(r.audio or b"" for r in call.audio(turn))
            samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
            assert len(samples) > 24000 * 0.3, "less than 0.3 s of audio"
            assert float(np.sqrt(np.mean(samples**2))) > 300, "the answer is silent"
        rows = await pool.fetch(
            "SELECT turn_id, role, text FROM voice_transcripts WHERE session_id=$1"
            " ORDER BY turn_id, role DESC",
            uuid.UUID(call.session_id),
        )
        assert [(r["turn_id"], r["role"]) for r in rows] == [
            (t, role) for t in range(1, len(QUESTIONS) + 1) for role in ("user", "assistant")
        ]
        assert all(r["text"] for r in rows)
    finally:
        await call.close()
