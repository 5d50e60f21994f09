"""Outgoing audio: paced at the lead, dropped on interruption, accounted as heard, and each
turn's start, first frame and end reported once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from parley_common.testing import eventually
from parley_gateway.realtime.playout import FRAME_MS, KEEP_FINISHED_TURNS, Playout, TurnAudio

RATE = 24_000
FRAME_BYTES = RATE * 2 * FRAME_MS // 1000


def pcm(ms: int, fill: int) -> bytes:
    """``ms`` of PCM16 at RATE whose every byte is ``fill``, so each turn's frames are known."""
    return bytes([fill]) * (RATE * 2 * ms // 1000)


@dataclass
class Client:
    """What the client receives: frames with their send times, and the turn callbacks."""

    frames: list[tuple[float, bytes]] = field(default_factory=list)
    events: list[tuple[str, int]] = field(default_factory=list)

    async def send(self, frame: bytes) -> None:
        self.frames.append((time.perf_counter(), frame))
        self.events.append(("frame", frame[0]))

    async def on_start(self, turn: TurnAudio) -> None:
        self.events.append(("start", turn.turn_id))

    async def on_first_frame(self, turn: TurnAudio) -> None:
        self.events.append(("first", turn.turn_id))

    async def on_end(self, turn: TurnAudio) -> None:
        self.events.append(("end", turn.turn_id))

    def sent_of(self, fill: int) -> list[tuple[float, bytes]]:
        return [(at, frame) for at, frame in self.frames if frame[0] == fill]


def connected(lead_ms: float) -> tuple[Playout, Client]:
    client = Client()
    playout = Playout(client.send, client.on_start, client.on_first_frame, client.on_end, lead_ms)
    return playout, client


@contextlib.asynccontextmanager
async def playing(lead_ms: float) -> AsyncIterator[tuple[Playout, Client]]:
    """A playout whose loop runs for the block."""
    playout, client = connected(lead_ms)
    task = asyncio.create_task(playout.run())
    try:
        yield playout, client
        assert not task.done(), "the playout loop stopped on its own"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_audio_goes_out_at_real_time_never_more_than_the_lead_ahead() -> None:
    lead_ms, audio_ms = 200, 1000
    async with playing(lead_ms) as (playout, client):
        playout.add(1, pcm(audio_ms, 1), RATE, 0, 10)
        await eventually(lambda: len(client.frames) == audio_ms // FRAME_MS, 5)

    t0 = client.frames[0][0]
    burst = lead_ms // FRAME_MS
    # The client gets a lead at once, to ride out network jitter...
    assert client.frames[burst][0] - t0 < 0.1
    for i, (at, frame) in enumerate(client.frames):
        assert len(frame) == FRAME_BYTES
        # ...and never more: audio not yet sent can still be dropped on an interruption.
        assert i * FRAME_MS <= lead_ms + (at - t0) * 1000 + 5
    # Paced at real time: the last frame leaves about one lead before the audio's end.
    took_ms = (client.frames[-1][0] - t0) * 1000
    assert audio_ms - lead_ms - 2 * FRAME_MS <= took_ms <= audio_ms - lead_ms + 150


async def test_dropping_a_turn_sends_none_of_its_rest_and_the_next_starts_at_once() -> None:
    lead_ms = 200
    async with playing(lead_ms) as (playout, client):
        playout.add(1, pcm(2000, 1), RATE, 0, 40)
        playout.end(1, RATE)
        await asyncio.sleep(0.4)
        assert playout.is_playing()

        dropped = playout.drop(1)
        dropped_at = time.perf_counter()

        assert dropped is not None
        assert dropped.turn_id == 1
        assert 1 not in playout.turns
        sent = len(client.sent_of(1))
        assert dropped.sent_ms == sent * FRAME_MS < dropped.queued_ms == 2000
        # The client flushes what it buffered: nothing plays any more.
        assert not playout.is_playing()
        heard_ms, heard_chars = dropped.heard(playout.played_ms())
        assert 300 <= heard_ms < dropped.sent_ms
        assert heard_chars == pytest.approx(40 * heard_ms / 2000)

        playout.add(2, pcm(1000, 2), RATE, 0, 20)
        await eventually(lambda: len(client.sent_of(2)) > lead_ms // FRAME_MS, 5)
        await asyncio.sleep(0.1)

    assert len(client.sent_of(1)) == sent
    # Its lead goes out at once: the dropped turn's buffered audio is not waited for.
    second = client.sent_of(2)
    assert second[lead_ms // FRAME_MS][0] - dropped_at < 0.1
    assert ("end", 1) not in client.events


def test_heard_maps_played_audio_onto_the_reply_text() -> None:
    turn = TurnAudio(turn_id=1, rate=RATE, sent_ms=2500, timeline_start_ms=500)
    turn.spans = [(1000.0, 0, 10), (2500.0, 10, 30)]

    assert turn.heard(200) == (0.0, 0.0)  # the turn had not started playing
    assert turn.heard(500) == (0.0, 0.0)
    assert turn.heard(1000) == (500.0, 5.0)  # half of the first sentence
    assert turn.heard(1500) == (1000.0, 10.0)
    assert turn.heard(2000) == pytest.approx((1500.0, 10 + 20 * 500 / 1500))
    assert turn.heard(9000) == (2500.0, 30.0)  # all of it, and no more than was sent

    turn.sent_ms = 1200  # the rest was dropped before it was sent
    assert turn.heard(9000) == pytest.approx((1200.0, 10 + 20 * 200 / 1500))
    assert TurnAudio(turn_id=2, rate=RATE).heard(5000) == (0.0, 0.0)


def test_audio_of_one_sentence_extends_its_span() -> None:
    playout, client = connected(lead_ms=200)  # its loop is not running: nothing is sent
    playout.add(1, pcm(400, 1), RATE, 0, 12)
    playout.add(1, pcm(200, 1), RATE, 0, 12)
    playout.add(1, pcm(600, 1), RATE, 12, 30)

    turn = playout.turns[1]
    assert turn.queued_ms == pytest.approx(1200)
    assert turn.spans == [(600.0, 0, 12), (1200.0, 12, 30)]
    assert turn.pending_frames == 1200 // FRAME_MS
    assert client.events == []


async def test_turn_callbacks_come_once_each_and_in_order() -> None:
    async with playing(lead_ms=100) as (playout, client):
        playout.add(1, pcm(400, 1), RATE, 0, 10)
        playout.end(1, RATE)  # the TTS is done before the audio is: the end waits for it
        await eventually(lambda: ("end", 1) in client.events, 5)
        playout.add(2, pcm(80, 2), RATE, 0, 5)
        await eventually(lambda: len(client.sent_of(2)) == 2, 5)
        await asyncio.sleep(0.1)
        assert ("end", 2) not in client.events  # its TTS has not said it is done
        playout.end(2, RATE)
        await eventually(lambda: ("end", 2) in client.events, 5)

    turn1 = [("start", 1), ("frame", 1), ("first", 1)] + [("frame", 1)] * 9 + [("end", 1)]
    turn2 = [("start", 2), ("frame", 2), ("first", 2), ("frame", 2), ("end", 2)]
    assert client.events == turn1 + turn2
    assert playout.turns[1].finished
    assert playout.turns[2].timeline_start_ms == pytest.approx(400)


async def test_a_turn_without_audio_still_ends_and_old_turns_are_forgotten() -> None:
    async with playing(lead_ms=100) as (playout, client):
        turns = range(1, KEEP_FINISHED_TURNS + 3)
        for turn_id in turns:
            playout.end(turn_id, RATE)
        await eventually(lambda: len(client.events) == len(turns), 5)
        playout.add(99, pcm(40, 9), RATE, 0, 1)  # unfinished: kept whatever its age
        await eventually(lambda: len(client.frames) == 1, 5)

    assert client.events[: len(turns)] == [("end", t) for t in turns]
    assert sorted(playout.turns) == [*turns[-KEEP_FINISHED_TURNS:], 99]
