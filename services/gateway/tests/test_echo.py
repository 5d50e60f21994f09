"""Server-side echo cancellation on simulated timing: the assistant's audio sent ahead of
its playback the way ``Playout`` sends it, a speakerphone that plays it and hears it back
(``bench.echo_room.EchoPath``), its microphone frames arriving at the gateway later."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from bench.audio import INPUT_RATE, spoken
from bench.echo_room import EchoPath, Samples, level_db, pcm_array, pcm_bytes
from parley_common.audio.resampling import StreamResampler
from parley_common.contracts.session import EchoCancellation, SessionConfig
from parley_gateway.realtime.echo import AEC_RATE, FarEnd, ServerEcho, echo_for

ANSWER = (
    "The weather tomorrow will be sunny with a light breeze from the west, and temperatures"
    " around twenty degrees in the afternoon."
)
QUESTION = "Wait, stop, what about tomorrow?"
OUTPUT_RATE = 24_000
SEND_FRAME_MS = 40
MIC_FRAME_MS = 20
LEAD_S = 0.25  # how far ahead of playback the gateway sends
UPLINK_S = 0.03  # microphone to gateway
PLAY_AT = 1.0  # the assistant starts speaking this long after the microphone
SPEECH_AT = 3.0  # when the user talks over it, in the double-talk cases


def _rms_db(x: Samples) -> float:
    return level_db(x)


async def _simulate(
    path: EchoPath, far16: Samples, near: Samples, total_s: float
) -> tuple[Samples, Samples, ServerEcho]:
    """The microphone's audio and what the canceller made of it (both from t=0)."""
    far_out = StreamResampler(INPUT_RATE, OUTPUT_RATE)
    far24 = far_out.process(pcm_bytes(far16)) + far_out.flush()
    step = OUTPUT_RATE * 2 * SEND_FRAME_MS // 1000
    events: list[tuple[float, int, bytes]] = []
    for j, i in enumerate(range(0, len(far24), step)):
        sent = max(PLAY_AT, PLAY_AT + j * SEND_FRAME_MS / 1000 - LEAD_S)
        events.append((sent, 0, far24[i : i + step]))
    played = np.zeros(round(total_s * INPUT_RATE))
    start = round(PLAY_AT * INPUT_RATE)
    played[start : start + len(far16)] = far16[: len(played) - start]
    speech = np.zeros(len(played))
    speech[: len(near)] = near[: len(played)]
    mic_step = INPUT_RATE * MIC_FRAME_MS // 1000
    mic = np.concatenate(
        [
            path.mic(played[i : i + mic_step], speech[i : i + mic_step])
            for i in range(0, len(played), mic_step)
        ]
    )
    for i in range(0, len(mic), mic_step):
        arrives = (i + mic_step) / INPUT_RATE + UPLINK_S
        events.append((arrives, 1, pcm_bytes(mic[i : i + mic_step])))
    heapq.heapify(events)
    echo = ServerEcho(OUTPUT_RATE)
    out = bytearray()
    origin = 1000.0  # perf_counter-like times: only differences matter
    while events:
        at, kind, data = heapq.heappop(events)
        if kind == 0:
            echo.far.sent(data, origin + at)
        else:
            out += await echo.cancel(data, origin + at)
    processed = pcm_array(bytes(out))
    assert len(mic) - len(processed) < AEC_RATE // 100  # all but a last partial block
    return pcm_array(pcm_bytes(mic))[: len(processed)], processed, echo


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
    mic, out, echo = await _simulate(path, answer, np.zeros(0), total)
    # After a second to converge, over the rest of the answer.
    span = slice(round((PLAY_AT + 1.0) * INPUT_RATE), len(mic))
    reduction = _rms_db(mic[span]) - _rms_db(out[span])
    assert reduction >= 15, f"echo only {reduction:.1f} dB quieter"
    assert echo.processed_blocks > 0


async def test_the_user_talking_over_the_echo_is_kept(answer: Samples, question: Samples) -> None:
    near = np.concatenate((np.zeros(round(SPEECH_AT * INPUT_RATE)), question))
    total = PLAY_AT + len(answer) / INPUT_RATE
    _, talked, _ = await _simulate(EchoPath(120, 10), answer, near, total)
    _, alone, _ = await _simulate(EchoPath(120, 10), answer, np.zeros(0), total)
    span = slice(round(SPEECH_AT * INPUT_RATE), round(SPEECH_AT * INPUT_RATE) + len(question))
    # The user's words keep their level, and stand far above what is left of the echo.
    assert abs(_rms_db(talked[span]) - _rms_db(near[span])) < 3
    assert _rms_db(talked[span]) - _rms_db(alone[span]) >= 15


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
