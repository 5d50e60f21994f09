"""The barge-in policy alone: speech interrupts an audible turn once it lasts the
sensitivity's minimum; shorter speech, silence from the assistant or low sensitivity never."""

from __future__ import annotations

import asyncio
import time

from parley_common.contracts.session import InterruptSensitivity
from parley_gateway.realtime.barge_in import BargeInPolicy


class Assistant:
    def __init__(self, turn: int | None) -> None:
        self.turn = turn
        self.interrupts: list[tuple[int, float]] = []

    def audible(self) -> int | None:
        return self.turn

    async def interrupt(self, turn_id: int, onset: float) -> None:
        self.interrupts.append((turn_id, onset))


async def test_speech_that_lasts_interrupts_once_after_the_minimum() -> None:
    assistant = Assistant(turn=3)
    async with asyncio.TaskGroup() as tg:
        policy = BargeInPolicy(
            InterruptSensitivity.HIGH, assistant.audible, assistant.interrupt, tg
        )
        onset = time.perf_counter()
        policy.speech_started(onset)
        await asyncio.sleep(0.05)
        assert assistant.interrupts == []  # 100 ms not reached yet
        await asyncio.sleep(0.1)
    assert assistant.interrupts == [(3, onset)]


async def test_speech_that_stops_before_the_minimum_is_not_a_barge_in() -> None:
    assistant = Assistant(turn=3)
    async with asyncio.TaskGroup() as tg:
        policy = BargeInPolicy(
            InterruptSensitivity.MEDIUM, assistant.audible, assistant.interrupt, tg
        )
        policy.speech_started(time.perf_counter())
        await asyncio.sleep(0.05)
        policy.speech_stopped()
        await asyncio.sleep(0.25)
    assert assistant.interrupts == []


async def test_nothing_audible_or_low_sensitivity_never_interrupts() -> None:
    silent, low = Assistant(turn=None), Assistant(turn=1)
    async with asyncio.TaskGroup() as tg:
        BargeInPolicy(
            InterruptSensitivity.HIGH, silent.audible, silent.interrupt, tg
        ).speech_started(time.perf_counter())
        BargeInPolicy(InterruptSensitivity.LOW, low.audible, low.interrupt, tg).speech_started(
            time.perf_counter() - 5
        )
        await asyncio.sleep(0.15)
    assert silent.interrupts == low.interrupts == []


async def test_a_turn_that_ends_before_the_minimum_is_not_interrupted() -> None:
    assistant = Assistant(turn=2)
    async with asyncio.TaskGroup() as tg:
        policy = BargeInPolicy(
            InterruptSensitivity.HIGH, assistant.audible, assistant.interrupt, tg
        )
        policy.speech_started(time.perf_counter())
        assistant.turn = None  # its audio finished playing meanwhile
        await asyncio.sleep(0.15)
    assert assistant.interrupts == []
