"""Pausing the playout while speech over the assistant is judged: nothing goes out while
paused, the timeline stops where the client is, and on resume the client gets exactly the
rest of the turn, from the paused position, with nothing lost or played twice."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from parley_common.testing import eventually

from .test_playout import RATE, playing

BYTES_PER_MS = RATE * 2 // 1000


def numbered(ms: int) -> bytes:
    """PCM16 whose every sample is its own index (mod 2^15): any shift or loss shows."""
    return (np.arange(ms * RATE // 1000) % 32768).astype("<i2").tobytes()


async def test_pause_holds_the_rest_and_resume_sends_it_from_the_paused_position() -> None:
    audio = numbered(1500)
    async with playing(lead_ms=200) as (playout, client):
        playout.add(7, audio, RATE, 0, 30)
        playout.end(7, RATE)
        await asyncio.sleep(0.5)
        playout.pause(7)
        paused_at = playout.played_ms()
        sent_before = len(client.frames)
        turn = playout.turns[7]
        # What was sent but not played went back to the queue: the turn's "sent" is what
        # the client played, and that is what would count as heard.
        assert turn.timeline_start_ms is not None
        assert turn.sent_ms == pytest.approx(paused_at - turn.timeline_start_ms)
        assert turn.heard(paused_at)[0] == pytest.approx(turn.sent_ms)
        assert 300 < paused_at < 1000
        await asyncio.sleep(0.4)
        assert len(client.frames) == sent_before  # nothing goes out while paused
        assert playout.played_ms() == paused_at  # and the timeline stands still
        assert playout.is_playing()  # the turn is still audible (it is waiting)

        playout.resume()
        await eventually(lambda: ("end", 7) in client.events, 5)
        resumed = b"".join(frame for _, frame in client.frames[sent_before:])

    played_bytes = round(paused_at * BYTES_PER_MS) & ~1
    assert audio[:played_bytes] + resumed == audio
    assert client.events.count(("start", 7)) == 1
    assert playout.turns[7].sent_ms == 1500


async def test_dropping_a_paused_turn_lets_the_next_one_play() -> None:
    async with playing(lead_ms=200) as (playout, client):
        playout.add(1, numbered(2000), RATE, 0, 30)
        await asyncio.sleep(0.3)
        playout.pause(1)
        dropped = playout.drop(1)
        assert dropped is not None
        assert playout.paused is None
        playout.add(2, numbered(300), RATE, 0, 10)
        playout.end(2, RATE)
        await eventually(lambda: ("end", 2) in client.events, 5)
