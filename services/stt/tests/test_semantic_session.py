"""Semantic end of turn in the STT session, on the real bus with the real VAD and the real
end-of-turn model (the scripted provider only writes the transcript).

Each pause's audio is sent at once and the rest only after the model has answered about it,
so the outcome does not depend on how fast this machine is: the session judges by audio time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bench.audio import duration_ms, silence
from bench.mic import voiced_span_ms
from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioInMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import SessionAssign, Transcript, transcript_adapter
from parley_common.contracts.session import InterruptSensitivity, SessionConfig
from parley_common.contracts.session import SttProvider as SttName
from parley_common.contracts.subjects import SessionChannel
from parley_common.providers import TEST_PROVIDERS_ENV
from parley_common.runtime import Runtime
from parley_common.settings import ServiceSettings
from parley_common.testing import eventually
from parley_stt.end_of_turn import Outcome
from parley_stt.session import SttSession, open_session

pytestmark = pytest.mark.models

REST = "two people at eight tonight."
QUESTION = "What is the weather like in Paris today?"
FRAME = 640  # 20 ms, as clients send it
ENOUGH_S = 10


def decisions(outcome: Outcome | None = None) -> float:
    outcomes = list(Outcome) if outcome is None else [outcome]
    return sum(
        REGISTRY.get_sample_value("parley_stt_end_of_turn_decisions_total", {"kind": o.value})
        or 0.0
        for o in outcomes
    )


@dataclass
class Line:
    """One session's audio in (as the gateway sends it) and final transcripts out."""

    bus: Bus
    stt: SttSession
    finals: list[Transcript] = field(default_factory=list)
    sample: int = 0

    async def send(self, pcm: bytes) -> None:
        subject = subjects.session(self.stt.sid, SessionChannel.AUDIO_IN)
        for i in range(0, len(pcm), FRAME):
            chunk = pcm[i : i + FRAME]
            meta = MessageMeta(self.stt.sid, extra=AudioInMeta(self.sample).headers())
            await self.bus.publish(subject, chunk, meta)
            self.sample += len(chunk) // 2

    async def pause(self, pcm: bytes, pause_ms: int) -> None:
        """Send ``pcm`` and ``pause_ms`` of silence, and wait for the model's answer."""
        before = decisions()
        await self.send(pcm + silence(pause_ms))
        await eventually(lambda: decisions() > before, ENOUGH_S)
        await asyncio.sleep(0.2)  # a turn that the answer ended would be final by now
        await self.bus.flush()


@pytest.fixture
async def line(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Any]]:
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    settings = ServiceSettings(database_url=SecretStr("postgresql://unused"))
    runtime = Runtime("stt", "stt-semantic", settings, bus, None, asyncio.Event())
    factory = open_session(runtime)
    tasks: list[asyncio.Task[None]] = []

    async def open_line(sid: str, semantic: bool = True) -> Line:
        config = SessionConfig(
            stt_provider=SttName.SCRIPTED,
            interrupt_sensitivity=InterruptSensitivity.HIGH,
            semantic_turn=semantic,
        )
        stt = await factory(SessionAssign(session_id=sid, user_id="test", config=config))
        assert isinstance(stt, SttSession)
        assert (stt.end_of_turn is not None) is semantic, "is the model installed?"
        opened = Line(bus, stt)

        async def on_transcript(msg: Received) -> None:
            transcript = msg.decode(transcript_adapter)
            if transcript.is_final:
                opened.finals.append(transcript)

        await bus.subscribe(subjects.session(sid, SessionChannel.TRANSCRIPT), on_transcript)
        tasks.append(asyncio.create_task(stt.run()))
        await asyncio.wait_for(stt.ready.wait(), ENOUGH_S)
        return opened

    yield open_line
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def whole(first: bytes, pause_ms: int, rest: bytes) -> float:
    """The least audio a turn holding both parts has: the first from its voice on, the pause,
    the rest up to its voice's end."""
    return duration_ms(first) - voiced_span_ms(first)[0] + pause_ms + voiced_span_ms(rest)[1]


@pytest.mark.parametrize("pause_ms", [300, 700])
async def test_a_pause_in_an_unfinished_sentence_keeps_one_turn(
    line: Any, unfinished: bytes, say: Callable[[str], bytes], pause_ms: int
) -> None:
    stt_line: Line = await line(f"stt-semantic-pause-{pause_ms}")
    rest = say(REST)
    incomplete = decisions(Outcome.INCOMPLETE)
    await stt_line.pause(unfinished, pause_ms)

    # The model called it unfinished, and the turn waits: 700 ms is past high's 500 ms.
    assert decisions(Outcome.INCOMPLETE) == incomplete + 1
    assert stt_line.finals == []
    await stt_line.send(rest + silence(1600))  # enough for any answer about the end
    await eventually(lambda: bool(stt_line.finals), ENOUGH_S)
    await asyncio.sleep(0.3)

    (final,) = stt_line.finals
    assert final.audio_ms >= whole(unfinished, pause_ms, rest)


async def test_a_finished_question_ends_the_turn_after_a_short_silence(
    line: Any, say: Callable[[str], bytes]
) -> None:
    stt_line: Line = await line("stt-semantic-complete")
    question = say(QUESTION)
    _, voice_end_ms = voiced_span_ms(question)
    spoken = question[: int(voice_end_ms) * 32]
    complete = decisions(Outcome.COMPLETE)
    await stt_line.send(spoken + silence(300))  # less than high's 500 ms
    await eventually(lambda: bool(stt_line.finals), ENOUGH_S)
    assert decisions(Outcome.COMPLETE) == complete + 1


async def test_with_the_option_off_the_sensitivity_silence_ends_the_turn(
    line: Any, unfinished: bytes, say: Callable[[str], bytes]
) -> None:
    stt_line: Line = await line("stt-semantic-off", semantic=False)
    asked = decisions()
    await stt_line.send(unfinished + silence(700))
    # Today's rule: 500 ms of silence at high ends the unfinished sentence's turn.
    await eventually(lambda: len(stt_line.finals) == 1, ENOUGH_S)
    await stt_line.send(say(REST) + silence(700))
    await eventually(lambda: len(stt_line.finals) == 2, ENOUGH_S)
    question = say(QUESTION)
    _, voice_end_ms = voiced_span_ms(question)
    await stt_line.send(question[: int(voice_end_ms) * 32] + silence(300))
    await asyncio.sleep(0.5)
    await stt_line.bus.flush()
    assert len(stt_line.finals) == 2  # 300 ms is not enough without the model
    assert decisions() == asked  # the model was never asked
