"""Semantic end of turn through the gateway, paced like a microphone: the real VAD and the
real end-of-turn model decide, the scripted models transcribe and answer. A pause in an
unfinished sentence is one turn and one answer, heard only after the sentence; with the
session option off the sensitivity's silence cuts it, as before."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_llm.providers.scripted import ScriptedLlmProvider

from .conftest import SCRIPTED

pytestmark = pytest.mark.models

# "I'd like to book a table for", spoken slowly by Piper (services/stt/tests/data/README.md).
RECORDING = (
    Path(__file__).parents[2] / "services" / "stt" / "tests" / "data" / "smart_turn_reference.npz"
)
REST = "two people at eight tonight."
LONGEST_WAIT_MS = 1500  # high sensitivity's longest pause in an unfinished sentence


@pytest.fixture(scope="module", autouse=True)
def patient_end_of_turn_model() -> Iterator[None]:
    """The model may take a second on a busy machine; past its 500 ms default the detector
    falls back to the silence rule, which is not what these tests are about. Set before the
    module's workers start, which read it once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STT_TURN_DECISION_TIMEOUT_MS", "5000")
        yield


@pytest.fixture(scope="module")
def unfinished() -> bytes:
    with np.load(RECORDING) as data:
        return bytes(data["pcm"].astype("<i2").tobytes())


@contextlib.asynccontextmanager
async def _call(platform_url: str, **config: Any) -> AsyncIterator[Call]:
    settings: dict[str, Any] = {**SCRIPTED, "interrupt_sensitivity": "high", **config}
    call = await Call.start(platform_url, **settings)
    try:
        yield call
    finally:
        await call.close()


def _user_finals(call: Call) -> list[dict[str, object]]:
    return [
        e["data"]
        for e in call.events("transcript")
        if e["data"]["is_final"] and e["data"]["role"] == "user"
    ]


@pytest.mark.parametrize("pause_ms", [300, 700])
async def test_a_pause_mid_sentence_is_one_turn_answered_once_after_it(
    platform_url: str,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    unfinished: bytes,
    pause_ms: int,
) -> None:
    scripted_llm.reply = "A table for two at eight, booked."
    rest = await speak(REST)
    async with _call(platform_url) as call:
        started = time.perf_counter()
        rest_sent_at = started + (len(unfinished) / 32 + pause_ms) / 1000
        await call.say(unfinished + silence(pause_ms) + rest + silence(LONGEST_WAIT_MS + 100))
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=20)
        await call.wait_for("audio_end", within_s=20)

        finals = _user_finals(call)
        assert len(finals) == 1, finals
        # Nothing was answered before the user had said the rest of the sentence.
        (first_audio,) = call.events("audio_start")
        assert call.arrival(first_audio) > rest_sent_at
        assert call.arrival(call.events("response")[0]) > rest_sent_at
        assert len([e for e in call.events("response") if e["data"]["done"]]) == 1
        rows = await pool.fetch(
            "SELECT role FROM voice_transcripts WHERE session_id=$1 ORDER BY turn_id, role DESC",
            uuid.UUID(call.session_id),
        )
        assert [r["role"] for r in rows] == ["user", "assistant"]
        assert done["data"]["text"] == "A table for two at eight, booked."


async def test_with_semantic_turns_off_the_silence_cuts_the_sentence(
    platform_url: str, scripted_llm: ScriptedLlmProvider, unfinished: bytes
) -> None:
    scripted_llm.reply = "Yes?"
    rest = await speak(REST)
    async with _call(platform_url, semantic_turn=False) as call:
        await call.say(unfinished + silence(700) + rest + silence(700))
        await call.wait_for("transcript", lambda _: len(_user_finals(call)) == 2, within_s=20)
        assert call.events("ready")[0]["data"]["config"]["semantic_turn"] is False
