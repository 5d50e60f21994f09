"""Phone audio out (``MarkedPlayout``): what was heard is what the marks say, pacing waits
for them, a barge-in's leftover marks mean nothing, a provider without marks falls back to
the clock, other rates are resampled; and the echo gate, the keypad."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from parley_common.testing import eventually
from parley_gateway.realtime.playout import FRAME_MS, TurnAudio
from parley_gateway.telephony.connection import Keypad, keypad_message
from parley_gateway.telephony.echo import EchoGate, rms
from parley_gateway.telephony.marked_playout import MarkedPlayout

RATE = 8000
FRAME_BYTES = RATE * 2 * FRAME_MS // 1000


def tone(ms: int, amplitude: float = 3000.0, rate: int = RATE) -> bytes:
    n = rate * ms // 1000
    samples = (int(amplitude * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n))
    return struct.pack(f"<{n}h", *samples)


@dataclass
class Phone:
    """What the provider gets: audio chunks and marks, in order."""

    sent: list[bytes | str] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    async def audio(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def mark(self, name: str) -> None:
        self.sent.append(name)

    @property
    def marks(self) -> list[str]:
        return [m for m in self.sent if isinstance(m, str)]

    @property
    def audio_ms(self) -> float:
        return sum(len(a) for a in self.sent if isinstance(a, bytes)) / (RATE * 2) * 1000


async def _nothing(turn: TurnAudio) -> None:
    return None


@contextlib.asynccontextmanager
async def playing(
    lead_ms: float, mark_timeout_s: float = 2.0
) -> AsyncIterator[tuple[MarkedPlayout, Phone]]:
    phone = Phone()
    playout = MarkedPlayout(
        phone.audio,
        phone.mark,
        _nothing,
        _nothing,
        _nothing,
        lead_ms,
        phone.levels.append,
        mark_timeout_s,
    )
    task = asyncio.create_task(playout.run())
    try:
        yield playout, phone
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_heard_is_what_the_marks_say_and_pacing_waits_for_them() -> None:
    async with playing(lead_ms=200) as (playout, phone):
        playout.add(1, tone(1000), RATE, 0, 50)
        playout.end(1, RATE)
        await eventually(lambda: phone.audio_ms >= 200)
        await asyncio.sleep(0.3)
        # Nothing echoed: nothing heard, and no more than the lead sent, however long.
        assert playout.played_ms() == 0
        assert phone.audio_ms <= 200 + FRAME_MS
        assert all(
            isinstance(a, bytes) and b == str(i + 1)
            for i, (a, b) in enumerate(zip(phone.sent[::2], phone.sent[1::2], strict=True))
        )
        playout.marked(phone.marks[2])  # the phone played three chunks (and the ones before)
        assert playout.played_ms() == pytest.approx(3 * FRAME_MS)
        assert playout.is_playing()
        heard_ms, chars = playout.turns[1].heard(playout.played_ms())
        assert heard_ms == pytest.approx(120)
        assert chars == pytest.approx(50 * 120 / 1000)
        assert len(phone.levels) == 3
        assert phone.levels[0] == pytest.approx(3000 / math.sqrt(2), rel=0.05)
        # Each echo lets the next chunk go: the provider's buffer stays a lead ahead.
        await eventually(lambda: phone.audio_ms >= 3 * FRAME_MS + 200)
        for name in list(phone.marks):
            playout.marked(name)
            await asyncio.sleep(0)
        await eventually(lambda: phone.audio_ms == 1000, within_s=3)
        for name in phone.marks:
            playout.marked(name)
        await eventually(lambda: not playout.is_playing())
        assert playout.played_ms() == pytest.approx(1000)


async def test_marks_out_at_a_barge_in_mean_nothing_afterwards() -> None:
    async with playing(lead_ms=200) as (playout, phone):
        playout.add(1, tone(1000), RATE, 0, 50)
        await eventually(lambda: len(phone.marks) >= 5)
        playout.marked(phone.marks[1])
        turn = playout.drop(1)
        assert turn is not None
        assert turn.heard(playout.played_ms())[0] == pytest.approx(2 * FRAME_MS)
        assert not playout.is_playing()
        # Twilio answers a clear with the marks it held: they move nothing.
        for name in phone.marks[2:]:
            playout.marked(name)
        assert playout.played_ms() == pytest.approx(2 * FRAME_MS)
        playout.marked("not ours")
        # The next turn goes out at once, after what was heard.
        before = len(phone.marks)
        playout.add(2, tone(400), RATE, 0, 10)
        await eventually(lambda: len(phone.marks) > before)
        playout.marked(phone.marks[before])
        assert playout.played_ms() == pytest.approx(3 * FRAME_MS)
        assert playout.turns[2].heard(playout.played_ms())[0] == pytest.approx(FRAME_MS)


async def test_a_provider_that_echoes_no_marks_is_paced_by_the_clock() -> None:
    async with playing(lead_ms=100, mark_timeout_s=0.2) as (playout, phone):
        playout.add(1, tone(1500), RATE, 0, 10)
        await asyncio.sleep(0.2)
        assert not playout.estimating
        assert phone.audio_ms <= 100 + FRAME_MS
        await eventually(lambda: phone.audio_ms == 1500, within_s=5)
        assert playout.estimating
        assert playout.played_ms() > 0


async def test_audio_at_another_rate_goes_out_at_8_khz() -> None:
    async with playing(lead_ms=2000) as (playout, phone):
        playout.add(1, tone(500, rate=24000), 24000, 0, 10)
        playout.end(1, 24000)
        await eventually(lambda: playout.turns[1].finished)
        assert phone.audio_ms == pytest.approx(500, abs=5)
        assert playout.turns[1].rate == RATE
        assert max(len(a) for a in phone.sent if isinstance(a, bytes)) <= FRAME_BYTES


def test_the_echo_gate() -> None:
    gate = EchoGate(margin_db=6.0, tail_s=0.5)
    loud, echo, speech = tone(20, 3000), tone(20, 900), tone(20, 2500)
    assert gate.filter(echo, now=0.0) == echo  # nothing played: nothing is echo
    gate.played(rms(loud), now=1.0)
    assert gate.filter(echo, now=1.1) == bytes(len(echo))  # 10 dB down: echo
    assert gate.filter(speech, now=1.2) == speech  # louder than the played level - 6 dB
    assert gate.suppressed == 1
    assert gate.filter(echo, now=1.6) == echo  # the echo delay has passed
    assert EchoGate(margin_db=0.0).ratio == 1.0
    assert rms(b"") == 0.0


def test_the_keypad() -> None:
    keypad = Keypad(pause_s=2.0)
    assert keypad.press("4", now=0.0) is None
    assert keypad.press("2", now=0.5) is None
    assert keypad.due(now=2.0) is None
    assert keypad.press("#", now=2.1) == "42"
    assert keypad.press("#", now=3.0) is None  # "#" alone is no entry
    keypad.press("*", now=4.0)
    keypad.press("9", now=4.5)
    assert keypad.due(now=6.6) == "*9"
    assert keypad.due(now=9.0) is None
    assert keypad_message("42").text == "(keypad: 42)"
