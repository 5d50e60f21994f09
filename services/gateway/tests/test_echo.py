"""Server-side echo cancellation on simulated timing: the assistant's audio sent ahead of
its playback the way ``Playout`` sends it, a speakerphone that plays it and hears it back
(``bench.echo_room.EchoPath``), its microphone frames arriving at the gateway later."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.audio import INPUT_RATE, spoken
from bench.echo_room import (
    EchoPath,
    Event,
    Samples,
    call_events,
    level_db,
    pcm_array,
    pcm_bytes,
    replay,
    simulate,
)
from parley_common.contracts.session import EchoCancellation, SessionConfig
from parley_common.contracts.ws import AudioPauseEvent, AudioResumeEvent, TurnData
from parley_gateway.realtime.echo import AEC_RATE, FarEnd, ServerEcho, echo_for

ANSWER = (
    "The weather tomorrow will be sunny with a light breeze from the west, and temperatures"
    " around twenty degrees in the afternoon."
)
QUESTION = "Wait, stop, what about tomorrow?"
OUTPUT_RATE = 24_000
PLAY_AT = 1.0  # the assistant starts speaking this long after the microphone
SPEECH_AT = 3.0  # when the user talks over it, in the double-talk cases


@pytest.fixture(scope="module")
def answer() -> Samples:
    return pcm_array(spoken(ANSWER))


@pytest.fixture(scope="module")
def question() -> Samples:
    return pcm_array(spoken(QUESTION))


@pytest.mark.parametrize(("delay_ms", "attenuation_db"), [(60, 10), (150, 15), (250, 20)])
async def test_echo_is_reduced_by_at_least_15_db(
    answer: Samples, delay_ms: int, attenuation_db: float
) -> None:
    path = EchoPath(delay_ms, attenuation_db)
    total = PLAY_AT + len(answer) / INPUT_RATE
    mic, out, echo = await simulate(path, answer, np.zeros(0), PLAY_AT, total)
    # After a second to converge, over the rest of the answer.
    span = slice(round((PLAY_AT + 1.0) * INPUT_RATE), len(mic))
    reduction = level_db(mic[span]) - level_db(out[span])
    assert reduction >= 15, f"echo only {reduction:.1f} dB quieter"
    assert echo.processed_blocks > 0


@pytest.mark.parametrize("uplink", ["stalled", "paused"])
async def test_the_echo_stays_cancelled_after_the_uplink_stalls_or_pauses(
    answer: Samples, uplink: str
) -> None:
    # The microphone's frames of 3.0-3.8 s arrive at once at 3.8 s (a network stall), or
    # never (the client stopped sending meanwhile).
    _, events = call_events(EchoPath(150, 15), answer, np.zeros(0), PLAY_AT, PLAY_AT + 6.0)
    moved: list[Event] = []
    for at, kind, data in events:
        if kind == 1 and 3.0 <= at < 3.8:
            if uplink == "paused":
                continue
            at = 3.8 + (at - 3.0) / 100
        moved.append((at, kind, data))
    moved.sort(key=lambda event: event[:2])
    sent = np.concatenate([pcm_array(data) for _, kind, data in moved if kind == 1])
    out = await replay(ServerEcho(OUTPUT_RATE), moved)
    after = round((4.5 if uplink == "stalled" else 3.7) * INPUT_RATE)  # 0.7 s after it
    reduction = level_db(sent[after : len(out)]) - level_db(out[after:])
    assert reduction >= 15, f"echo only {reduction:.1f} dB quieter"


async def test_the_user_talking_over_the_echo_is_kept(answer: Samples, question: Samples) -> None:
    near = np.concatenate((np.zeros(round(SPEECH_AT * INPUT_RATE)), question))
    total = PLAY_AT + len(answer) / INPUT_RATE
    _, talked, _ = await simulate(EchoPath(120, 10), answer, near, PLAY_AT, total)
    _, alone, _ = await simulate(EchoPath(120, 10), answer, np.zeros(0), PLAY_AT, total)
    span = slice(round(SPEECH_AT * INPUT_RATE), round(SPEECH_AT * INPUT_RATE) + len(question))
    # The user's words keep their level, and stand far above what is left of the echo.
    assert abs(level_db(talked[span]) - level_db(near[span])) < 3
    assert level_db(talked[span]) - level_db(alone[span]) >= 15


async def test_a_client_without_echo_keeps_the_words_said_over_the_assistant(
    answer: Samples, question: Samples
) -> None:
    # Headphones: nothing of the answer comes back. AEC3 alone would take the user's
    # words for echo for its first seconds (about 6 dB of them gone, and the VAD's speech).
    near = np.concatenate((np.zeros(round(SPEECH_AT * INPUT_RATE)), question))
    total = PLAY_AT + len(answer) / INPUT_RATE
    mic, out, echo = await simulate(EchoPath(100, 200), answer, near, PLAY_AT, total)
    assert not echo.presence.cancelling
    assert not echo.presence.echo_seen
    span = slice(round(SPEECH_AT * INPUT_RATE), round(SPEECH_AT * INPUT_RATE) + len(question))
    assert np.array_equal(out[span], mic[span])
    assert echo.processed_blocks > 0  # AEC3 kept running, for an echo that may come


async def test_an_echo_is_recognised_as_one(answer: Samples) -> None:
    total = PLAY_AT + len(answer) / INPUT_RATE
    _, _, echo = await simulate(EchoPath(250, 20), answer, np.zeros(0), PLAY_AT, total)
    assert echo.presence.echo_seen
    assert echo.presence.cancelling
    assert echo.presence.correlation >= 0.75


async def test_nothing_played_means_the_audio_passes_untouched() -> None:
    echo = ServerEcho(OUTPUT_RATE)
    frame = pcm_bytes(np.random.default_rng(3).normal(0, 3000, 320))
    assert await echo.cancel(frame, 10.0) == frame
    # A frame that is not whole 10 ms blocks: the rest waits for the next frame.
    assert await echo.cancel(frame[:100], 10.02) == frame[:0]
    assert await echo.cancel(frame[100:], 10.04) == frame
    assert echo.processed_blocks == 0


def test_a_flush_forgets_audio_the_client_did_not_play() -> None:
    far = FarEnd(AEC_RATE)
    tone = pcm_bytes(np.full(AEC_RATE, 1000.0))  # one second, sent at once
    far.sent(tone, 5.0)
    far.flush(5.5)  # interrupted half-way: the second half never plays
    assert far.end == AEC_RATE // 2
    assert far.read(0, 10).tolist() == [1000] * 10
    assert not far.read(AEC_RATE // 2, AEC_RATE // 2).any()
    # The next frame plays from now, not after the dropped audio.
    far.sent(tone[:320], 5.6)
    assert far.read(round(0.6 * AEC_RATE), 160).tolist() == [1000] * 160


def test_who_cancels_echo_follows_the_session_option() -> None:
    assert echo_for(SessionConfig()) is not None  # auto: the server, for PCM clients
    assert echo_for(SessionConfig(echo_cancellation=EchoCancellation.SERVER)) is not None
    assert echo_for(SessionConfig(echo_cancellation=EchoCancellation.CLIENT)) is None
    assert echo_for(SessionConfig(echo_cancellation=EchoCancellation.OFF)) is None


async def test_a_pause_flushes_what_the_client_buffered() -> None:
    echo = ServerEcho(AEC_RATE)
    echo.far.sent(pcm_bytes(np.full(AEC_RATE, 1000.0)), time.perf_counter())
    sent: list[AudioPauseEvent | AudioResumeEvent] = []

    async def send(event: AudioPauseEvent | AudioResumeEvent) -> None:
        sent.append(event)

    pauses = echo.on_pause(send)
    resume = AudioResumeEvent(data=TurnData(turn_id=1))
    await pauses(resume)
    assert echo.far.end == AEC_RATE  # a resume drops nothing
    pause = AudioPauseEvent(data=TurnData(turn_id=1))
    await pauses(pause)
    assert echo.far.end < AEC_RATE // 2  # the rest of the second never plays
    assert sent == [resume, pause]
