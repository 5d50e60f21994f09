"""A short pause after the first word, with the speculative answer on, through the gateway
paced like a microphone (real VAD, real end-of-turn model, scripted models): the bench's
"What colour is the sky on a clear day?" (Piper leaves a dip after "What", which the model
calls a finished utterance) is one turn, the whole question, and the answer started in the
dip is never heard."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import asyncpg
import numpy as np
import pytest

from bench.audio import BYTES_PER_MS, silence, speak
from bench.call import Call
from bench.mic import voiced_span_ms
from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Transcript,
    TurnCommitted,
    UserText,
    reply_adapter,
    transcript_adapter,
)
from parley_common.contracts.subjects import SessionChannel
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_stt.providers.scripted import ScriptedSttProvider

from .conftest import SCRIPTED

pytestmark = pytest.mark.models

QUESTION = "What colour is the sky on a clear day?"
# Leading silence that puts the question where the VAD's 32 ms frames once made the old
# detector end the turn on the rise of "colour" (services/stt/tests/test_speech_resuming.py).
LEAD_MS = 642
WINDOW = 160  # 10 ms
VOICED = 500.0  # the 10 ms energy that counts as voice (as bench.mic.voiced_span_ms)


@pytest.fixture(scope="module", autouse=True)
def patient_end_of_turn_model() -> Iterator[None]:
    """A busy machine may take a second to judge a pause; past the 500 ms default the
    silence rule would decide instead (set before the module's workers start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STT_TURN_DECISION_TIMEOUT_MS", "5000")
        yield


def _dip(pcm: bytes) -> tuple[int, int]:
    """The first stretch without voice after the voice began (byte offsets, 10 ms steps)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    windows = samples[: len(samples) - len(samples) % WINDOW].reshape(-1, WINDOW)
    voiced = np.sqrt(np.mean(windows * windows, axis=1)) > VOICED
    first = int(np.argmax(voiced))
    start = first + int(np.argmin(voiced[first:]))
    end = start + int(np.argmax(voiced[start:]))
    return start * WINDOW * 2, end * WINDOW * 2


@pytest.mark.parametrize("extra_ms", [0, 150])
async def test_a_pause_after_the_first_word_is_one_turn_and_nothing_is_heard_early(
    platform_url: str,
    bus: Bus,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    scripted_stt: ScriptedSttProvider,
    extra_ms: int,
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = "Blue. " + "It is blue. " * 20, 0.02
    scripted_stt.script = [QUESTION]
    question = await speak(QUESTION)
    dip_start, dip_end = _dip(question)
    dip_ms = (dip_end - dip_start) // BYTES_PER_MS + extra_ms
    assert 100 <= dip_ms <= 300, dip_ms  # the pause this test is about
    middle = (dip_start + dip_end) // 2 // 2 * 2
    what, rest = question[:middle], question[middle:]
    spoken = silence(LEAD_MS) + what + silence(extra_ms) + rest
    call = await Call.start(
        platform_url, **SCRIPTED, interrupt_sensitivity="high", speculative_answer=True
    )
    finals: list[Transcript] = []
    started: list[tuple[int, UserText]] = []
    committed: list[int] = []

    async def on_transcript(msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        if transcript.is_final:
            finals.append(transcript)

    async def on_reply(msg: Received) -> None:
        event = msg.decode(reply_adapter)
        if isinstance(event, UserText):
            started.append((msg.meta.turn_id, event))
        elif isinstance(event, TurnCommitted):
            committed.append(msg.meta.turn_id)

    for channel, handler in (
        (SessionChannel.TRANSCRIPT, on_transcript),
        (SessionChannel.REPLY, on_reply),
    ):
        await bus.subscribe(subjects.session(call.session_id, channel), handler)
    await bus.flush()
    try:
        said_at = time.perf_counter()
        rest_sent_at = said_at + (len(spoken) - len(rest)) / BYTES_PER_MS / 1000
        await call.say(spoken + silence(1600))
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
        await call.wait_for("audio_end", within_s=30)

        # One turn: the whole question, from "What" to "day".
        (final,) = finals
        first_voice_ms, last_voice_ms = voiced_span_ms(question)
        assert final.audio_ms >= last_voice_ms - first_voice_ms + extra_ms
        user_finals = [
            e
            for e in call.events("transcript")
            if e["data"]["is_final"] and e["data"]["role"] == "user"
        ]
        assert [e["data"]["text"] for e in user_finals] == [QUESTION]

        # The answer heard is the turn's own, and nothing came before the rest was said.
        turn, _ = started[-1]
        assert committed == [turn]
        assert done["data"]["turn_id"] == turn
        assert {e["data"]["turn_id"] for e in call.events("response")} == {turn}
        (audio_start,) = call.events("audio_start")
        assert audio_start["data"]["turn_id"] == turn
        assert call.arrival(call.events("response")[0]) > rest_sent_at
        assert call.arrival(audio_start) > rest_sent_at
        rows = await pool.fetch(
            "SELECT turn_id, role FROM voice_transcripts WHERE session_id=$1"
            " ORDER BY turn_id, role DESC",
            uuid.UUID(call.session_id),
        )
        assert [(r["turn_id"], r["role"]) for r in rows] == [(turn, "user"), (turn, "assistant")]
    finally:
        await call.close()
