"""The speculative answer through the gateway, paced like a microphone (real VAD, real
end-of-turn model, scripted models): the answer starts when the user falls silent and is
held until the turn commits. A pause mid-sentence drops it everywhere: not heard, not
stored, not counted, the stream closed and the TTS stopped, and the one turn is the whole
sentence. A finished question plays the speculative answer once the turn commits, and a
dip after its first word ("What | colour is the sky...?") does not split it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from bench.audio import BYTES_PER_MS, silence, speak
from bench.call import Call
from bench.mic import voiced_span_ms
from parley_common.bus import Bus, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    Transcript,
    TurnCommitted,
    UserText,
    interrupt_adapter,
    reply_adapter,
    transcript_adapter,
)
from parley_common.contracts.events import UsageRecorded
from parley_common.contracts.subjects import SessionChannel
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_stt.providers.scripted import ScriptedSttProvider

from .conftest import SCRIPTED

pytestmark = pytest.mark.models

RECORDING = (
    Path(__file__).parents[2] / "services" / "stt" / "tests" / "data" / "smart_turn_reference.npz"
)
REST = "two people at eight tonight."
LONGEST_WAIT_MS = 1500  # high sensitivity's longest pause in an unfinished sentence
# A first sentence the TTS speaks at once, then enough words to be streaming still when
# the user goes on (0.03 s a word).
LONG_REPLY = "Sure. " + " ".join(f"word{i}" for i in range(150)) + "."


@pytest.fixture(scope="module", autouse=True)
def patient_end_of_turn_model() -> Iterator[None]:
    """A busy machine may take a second to judge a pause; past the 500 ms default the
    silence rule would decide instead (set before the module's workers start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STT_TURN_DECISION_TIMEOUT_MS", "5000")
        yield


@dataclass
class BetweenServices:
    """The session's messages between the services, as they were published."""

    started: list[tuple[int, UserText]] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    interrupts: list[tuple[Interrupt, float]] = field(default_factory=list)
    audio: dict[int, list[tuple[float, bool]]] = field(default_factory=dict)  # (at, end)
    llm_usage: list[UsageRecorded] = field(default_factory=list)
    finals: list[Transcript] = field(default_factory=list)  # the STT's, as published

    async def on_reply(self, msg: Received) -> None:
        event = msg.decode(reply_adapter)
        if isinstance(event, UserText):
            self.started.append((msg.meta.turn_id, event))
        elif isinstance(event, TurnCommitted):
            self.committed.append(msg.meta.turn_id)

    async def on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt):
            self.interrupts.append((event, time.perf_counter()))

    async def on_transcript(self, msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        if transcript.is_final:
            self.finals.append(transcript)

    async def on_audio(self, msg: Received) -> None:
        end = AudioOutMeta.parse(msg.meta.extra).end
        self.audio.setdefault(msg.meta.turn_id, []).append((time.perf_counter(), end))


@contextlib.asynccontextmanager
async def _call(platform_url: str, bus: Bus) -> AsyncIterator[tuple[Call, BetweenServices]]:
    call = await Call.start(
        platform_url, **SCRIPTED, interrupt_sensitivity="high", speculative_answer=True
    )
    seen = BetweenServices()
    sid = call.session_id
    for channel, handler in (
        (SessionChannel.REPLY, seen.on_reply),
        (SessionChannel.INTERRUPT, seen.on_interrupt),
        (SessionChannel.AUDIO_OUT, seen.on_audio),
        (SessionChannel.TRANSCRIPT, seen.on_transcript),
    ):
        await bus.subscribe(subjects.session(sid, channel), handler)

    async def on_usage(msg: Received) -> None:
        usage = UsageRecorded.model_validate_json(msg.data)
        if usage.session_id == sid and usage.service == "llm":
            seen.llm_usage.append(usage)

    await bus.subscribe(subjects.event("usage.recorded"), on_usage)
    await bus.flush()
    try:
        yield call, seen
    finally:
        await call.close()


def _user_finals(call: Call) -> list[dict[str, Any]]:
    return [
        e["data"]
        for e in call.events("transcript")
        if e["data"]["is_final"] and e["data"]["role"] == "user"
    ]


async def _rows(pool: asyncpg.Pool, session_id: str) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT turn_id, role FROM voice_transcripts WHERE session_id=$1 ORDER BY turn_id, role"
        " DESC",
        uuid.UUID(session_id),
    )
    return [(r["turn_id"], r["role"]) for r in rows]


async def test_a_pause_mid_sentence_drops_the_speculative_answer_unheard_and_unstored(
    platform_url: str, bus: Bus, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    with np.load(RECORDING) as data:
        unfinished = bytes(data["pcm"].astype("<i2").tobytes())
    scripted_llm.reply, scripted_llm.delta_delay_s = LONG_REPLY, 0.03
    runs_before = len(scripted_llm.runs)
    rest = await speak(REST)
    async with _call(platform_url, bus) as (call, seen):
        rest_sent_at = time.perf_counter() + (len(unfinished) / 32 + 300) / 1000
        await call.say(unfinished + silence(300) + rest + silence(LONGEST_WAIT_MS + 100))
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
        await asyncio.sleep(1.0)  # anything of the dropped answer would have come by now

        # The pause started an answer, and the user going on dropped it; the turn's own
        # (speculative too, once the sentence was finished) is the one that committed.
        *dropped, (turn, _) = seen.started
        assert dropped
        assert seen.committed == [turn]
        runs = scripted_llm.runs[runs_before:]
        assert len(runs) == len(dropped) + 1
        answer_run = runs[-1]
        for (turn_id, started), run in zip(dropped, runs, strict=False):
            assert started.speculative
            cut = [(e, at) for e, at in seen.interrupts if e.turn_id == turn_id]
            assert [e.reason for e, _ in cut] == [InterruptReason.SPECULATION]
            # Its stream was closed, and the TTS stopped: no more audio, no end of its audio.
            assert run.cancelled
            assert not run.finished
            cut_at = cut[0][1]
            assert all(at < cut_at + 0.5 and not end for at, end in seen.audio.get(turn_id, []))

        # One turn, the whole sentence; nothing was heard or shown before it was said.
        assert len(_user_finals(call)) == 1
        assert done["data"]["turn_id"] == turn
        assert {e["data"]["turn_id"] for e in call.events("response")} == {turn}
        assert {e["data"]["turn_id"] for e in call.events("audio_start")} <= {turn}
        assert call.arrival(call.events("response")[0]) > rest_sent_at
        assert not call.events("interrupted")  # the client never knew of the dropped turn

        # Nothing of it stored or counted, nor left in the dialogue's memory: the answer's
        # prompt holds the user's one turn.
        assert await _rows(pool, call.session_id) == [(turn, "user"), (turn, "assistant")]
        total = await pool.fetchval(
            "SELECT total_turns FROM voice_sessions WHERE id=$1", uuid.UUID(call.session_id)
        )
        assert total == 1
        assert [m.role for m in answer_run.messages] == ["system", "user"]
        assert {u.unit for u in seen.llm_usage} == {"input_tokens", "output_tokens"}
        assert len(seen.llm_usage) == 2  # the answer's only


async def test_a_question_is_answered_by_the_speculative_answer_once_the_turn_commits(
    platform_url: str, bus: Bus, pool: asyncpg.Pool, scripted_llm: ScriptedLlmProvider
) -> None:
    scripted_llm.reply, scripted_llm.delta_delay_s = "Paris is the capital of France.", 0.0
    runs_before = len(scripted_llm.runs)
    question = await speak("What is the capital of France?")
    async with _call(platform_url, bus) as (call, seen):
        speech_sent_at = time.perf_counter() + len(question) / 32 / 1000
        await call.say(question + silence(1200))
        await call.wait_for("audio_end", within_s=30)
        await call.wait_for("metrics", lambda e: e["data"].get("voice_to_voice_ms") is not None)

        # The answer was started during the silence and committed, not made again.
        *_, (turn, started) = seen.started
        assert started.speculative
        assert seen.committed == [turn]
        assert scripted_llm.runs[-1].finished
        assert len(scripted_llm.runs) == runs_before + len(seen.started)
        # Played once, after the user had finished, from the audio made meanwhile.
        assert len([e for e in call.events("response") if e["data"]["done"]]) == 1
        (audio_start,) = call.events("audio_start")
        assert audio_start["data"]["turn_id"] == turn
        assert call.arrival(audio_start) > speech_sent_at
        assert len(_user_finals(call)) == 1
        assert await _rows(pool, call.session_id) == [(turn, "user"), (turn, "assistant")]
        assert len(seen.llm_usage) == 2


def _dip(pcm: bytes) -> tuple[int, int]:
    """The first stretch without voice after the voice began (byte offsets, 10 ms steps;
    voice as ``bench.mic.voiced_span_ms`` hears it)."""
    window = 160
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    windows = samples[: len(samples) - len(samples) % window].reshape(-1, window)
    voiced = np.sqrt(np.mean(windows * windows, axis=1)) > 500.0
    first = int(np.argmax(voiced))
    start = first + int(np.argmin(voiced[first:]))
    end = start + int(np.argmax(voiced[start:]))
    return start * window * 2, end * window * 2


@pytest.mark.parametrize("extra_ms", [0, 150])
async def test_a_pause_after_the_first_word_is_one_turn_and_nothing_is_heard_early(
    platform_url: str,
    bus: Bus,
    pool: asyncpg.Pool,
    scripted_llm: ScriptedLlmProvider,
    scripted_stt: ScriptedSttProvider,
    extra_ms: int,
) -> None:
    """The bench's question: the end-of-turn model calls "What" finished, and Piper's dip
    after it (130 ms, then ``extra_ms`` more) once ended the turn there."""
    question_text = "What colour is the sky on a clear day?"
    scripted_llm.reply, scripted_llm.delta_delay_s = "Blue. " + "It is blue. " * 20, 0.02
    scripted_stt.script = [question_text]
    question = await speak(question_text)
    dip_start, dip_end = _dip(question)
    assert 100 <= (dip_end - dip_start) // BYTES_PER_MS + extra_ms <= 300
    middle = (dip_start + dip_end) // 4 * 2
    rest = question[middle:]
    # 642 ms first: the VAD's frames then fall where the old detector ended the turn on the
    # rise of "colour" (services/stt/tests/test_speech_resuming.py).
    spoken = silence(642) + question[:middle] + silence(extra_ms) + rest
    async with _call(platform_url, bus) as (call, seen):
        rest_sent_at = time.perf_counter() + (len(spoken) - len(rest)) / BYTES_PER_MS / 1000
        await call.say(spoken + silence(1600))
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
        await call.wait_for("audio_end", within_s=30)

        # One turn: the whole question, from "What" to "day".
        (final,) = seen.finals
        first_voice_ms, last_voice_ms = voiced_span_ms(question)
        assert final.audio_ms >= last_voice_ms - first_voice_ms + extra_ms
        assert [f["text"] for f in _user_finals(call)] == [question_text]

        # The answer heard is the turn's own, and nothing came before the rest was said.
        turn, _ = seen.started[-1]
        assert seen.committed == [turn]
        assert done["data"]["turn_id"] == turn
        assert {e["data"]["turn_id"] for e in call.events("response")} == {turn}
        (audio_start,) = call.events("audio_start")
        assert audio_start["data"]["turn_id"] == turn
        assert call.arrival(call.events("response")[0]) > rest_sent_at
        assert call.arrival(audio_start) > rest_sent_at
        assert await _rows(pool, call.session_id) == [(turn, "user"), (turn, "assistant")]
