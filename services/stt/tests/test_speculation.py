"""The speculative transcript on the real bus: offered while the user is silent, withdrawn
(SpeculationCancelled) when they go on, and never offered when the session turned it off;
then the pause's words go out as a partial instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.audio import AudioInMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    SessionAssign,
    SpeculationCancelled,
    Transcript,
    interrupt_adapter,
    transcript_adapter,
)
from parley_common.contracts.session import InterruptSensitivity, SessionConfig
from parley_common.contracts.session import SttProvider as SttName
from parley_common.contracts.subjects import SessionChannel
from parley_common.testing import eventually
from parley_stt.providers.scripted import ScriptedSttProvider
from parley_stt.session import SttSession
from parley_stt.vad import SileroVad

FRAME = 640  # 20 ms of PCM16 at 16 kHz
PAUSE = bytes(FRAME * 15)  # 300 ms: shorter than high sensitivity's 500 ms
SILENCE = bytes(FRAME * 50)  # 1 s: ends the turn


def trimmed(pcm: bytes) -> bytes:
    """Speech without the synthesiser's leading and trailing silence, so that a pause is
    exactly the silence the test puts in."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.nonzero(np.abs(samples) > 500)[0]
    return samples[loud[0] : loud[-1] + 1].tobytes()


@dataclass
class Seen:
    """What the session published, in order: ("speculative"|"final"|"cancelled", message)."""

    order: list[tuple[str, Transcript | SpeculationCancelled]] = field(default_factory=list)
    partials: list[tuple[Transcript, int]] = field(default_factory=list)  # (it, finals before)

    async def on_transcript(self, msg: Received) -> None:
        t = msg.decode(transcript_adapter)
        if t.speculative:
            self.order.append(("speculative", t))
        elif t.is_final:
            self.order.append(("final", t))
        else:
            self.partials.append((t, self.kinds().count("final")))

    async def on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, SpeculationCancelled):
            self.order.append(("cancelled", event))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.order]


@pytest.fixture
async def start(bus: Bus) -> AsyncIterator[Callable[..., Any]]:
    tasks: list[asyncio.Task[None]] = []

    async def run(
        sid: str, speculative: bool = True, heard: str = "book a table for two"
    ) -> tuple[Seen, Callable[[bytes], Any]]:
        config = SessionConfig(
            stt_provider=SttName.SCRIPTED,
            interrupt_sensitivity=InterruptSensitivity.HIGH,
            speculative_answer=speculative,
        )
        assign = SessionAssign(session_id=sid, user_id="test", config=config)
        stt = SttSession(bus, assign, ScriptedSttProvider([heard]), SileroVad())
        seen = Seen()
        await bus.subscribe(subjects.session(sid, SessionChannel.TRANSCRIPT), seen.on_transcript)
        await bus.subscribe(subjects.session(sid, SessionChannel.INTERRUPT), seen.on_interrupt)
        tasks.append(asyncio.create_task(stt.run()))
        await asyncio.wait_for(stt.ready.wait(), 10)
        sample = 0

        async def audio(pcm: bytes) -> None:
            nonlocal sample
            for i in range(0, len(pcm), FRAME):
                chunk = pcm[i : i + FRAME]
                meta = MessageMeta(sid, extra=AudioInMeta(sample).headers())
                await bus.publish(subjects.session(sid, SessionChannel.AUDIO_IN), chunk, meta)
                sample += len(chunk) // 2

        return seen, audio

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_pause_offers_a_speculative_transcript_withdrawn_when_the_user_goes_on(
    start: Any, say: Any
) -> None:
    seen, audio = await start("stt-speculation-resume")
    first, second = trimmed(say("I would like to book a table")), trimmed(say("for two people"))
    await audio(bytes(FRAME * 10) + first + PAUSE)
    await eventually(lambda: "speculative" in seen.kinds(), 10)
    assert "final" not in seen.kinds()  # the turn has not ended: nothing is final yet

    await audio(second + SILENCE)
    await eventually(lambda: "final" in seen.kinds(), 10)
    await asyncio.sleep(0.3)  # nothing more is coming
    assert seen.kinds() == ["speculative", "cancelled", "final"]
    speculative, final = seen.order[0][1], seen.order[2][1]
    assert isinstance(speculative, Transcript)
    assert isinstance(final, Transcript)
    assert not speculative.is_final  # stored and shown as a partial at most
    # One turn, the whole utterance: the final covers both parts of the sentence.
    assert final.audio_ms >= speculative.audio_ms + 900


async def test_a_turn_that_ends_in_its_pause_commits_the_speculative_transcript(
    start: Any, say: Any
) -> None:
    seen, audio = await start("stt-speculation-commit")
    await audio(bytes(FRAME * 10) + say("What is the capital of France?") + PAUSE)
    await eventually(lambda: "speculative" in seen.kinds(), 10)
    await audio(SILENCE)
    await eventually(lambda: "final" in seen.kinds(), 10)
    await asyncio.sleep(0.3)
    assert seen.kinds() == ["speculative", "final"]
    speculative, final = seen.order[0][1], seen.order[1][1]
    assert isinstance(speculative, Transcript)
    assert isinstance(final, Transcript)
    assert (final.text, final.audio_ms) == (speculative.text, speculative.audio_ms)


async def test_the_session_option_turns_speculation_off(start: Any, say: Any) -> None:
    seen, audio = await start("stt-speculation-off", speculative=False)
    await audio(bytes(FRAME * 10) + trimmed(say("I would like to book a table")) + PAUSE)
    await asyncio.sleep(0.5)  # the speculative final has long been made
    await audio(trimmed(say("for two people")) + SILENCE)
    await eventually(lambda: "final" in seen.kinds(), 10)
    await asyncio.sleep(0.3)
    assert seen.kinds() == ["final"]


@pytest.mark.parametrize("heard", ["yeah", ""])
async def test_without_speculation_the_pause_says_its_words_as_a_partial(
    start: Any, say: Any, heard: str
) -> None:
    # A short utterance (no interim partial is due) over the assistant: the gateway judges
    # it on the pause's words, so they go out when the user falls silent, not with the final.
    seen, audio = await start(f"stt-pause-partial-{heard or 'none'}", False, heard)
    await audio(bytes(FRAME * 10) + trimmed(say("Yeah.")) + PAUSE)
    await eventually(lambda: bool(seen.partials), 10)
    partial, finals_before = seen.partials[0]
    assert (partial.text, partial.is_final, finals_before) == (heard, False, 0)
    assert "speculative" not in seen.kinds()
    await audio(SILENCE)
    if heard:
        await eventually(lambda: "final" in seen.kinds(), 10)
    await asyncio.sleep(0.3)
    assert seen.kinds() == (["final"] if heard else [])  # no words: nothing to answer
    assert len(seen.partials) == 1
