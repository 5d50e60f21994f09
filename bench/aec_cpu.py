"""What server-side echo cancellation costs and what it buys.

Cost: WebRTC's AEC3 on its own (µs per 10 ms block), then the gateway's whole per-session
path (``ServerEcho``: the far end resampled and placed on the playback timeline, the
uplink cut into blocks and cancelled in a worker thread) over simulated calls, as CPU time
per second of call: the share of one core a session takes while the assistant speaks, and
while it is silent (the uplink then passes untouched).

Benefit: an echo set of answers (the local Piper voice) played to a speakerphone that
hears them back ``--delays`` ms later, ``--attenuations`` dB quieter, over noise. The
uplink, raw (no AEC) or through ``ServerEcho``, goes through the STT's Silero VAD; a run of
speech as long as medium sensitivity's barge-in minimum (200 ms) during the answer is a
self-interruption. The same answers with a question spoken over them count the real
interruptions that AEC must not hide, over the echo and without any (headphones).

    python -m bench.aec_cpu
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import numpy as np
from pywebrtc_audio import EchoCanceller

from bench.audio import INPUT_RATE, spoken
from bench.echo_room import (
    OUTPUT_RATE,
    EchoPath,
    Samples,
    call_events,
    pcm_array,
    pcm_bytes,
    replay,
)
from parley_common.contracts.session import InterruptSensitivity
from parley_gateway.realtime.echo import AEC_RATE, BLOCK, ServerEcho
from parley_stt.vad import VadFrames

ANSWERS = (
    "Tomorrow will be sunny in the morning, with a light breeze from the west.",
    "Your order left the warehouse this morning and should arrive on Thursday.",
    "The museum opens at nine and closes at six, except on Mondays.",
    "A good pasta sauce needs ripe tomatoes, garlic, olive oil and a little patience.",
)
QUESTION = "Wait, stop, what about the day after tomorrow?"
PLAY_AT = 1.0
SPEECH_AT = 2.5  # the question starts this long into the call
TAIL_S = 1.0  # the call goes on after the answer, for its echo's tail
SPEECH_PROBABILITY = 0.5  # the STT's start threshold (parley_stt.turns)


def aec3_block_us(seconds: float) -> float:
    """µs of WebRTC's AEC3 per 10 ms block, on ``seconds`` of echoed speech."""
    far = np.frombuffer(spoken(ANSWERS[0]), dtype="<i2")
    far = np.resize(far, int(seconds * AEC_RATE) // BLOCK * BLOCK)
    near = (np.roll(far, 2400) * 0.3).astype(np.int16)
    aec = EchoCanceller(sample_rate=AEC_RATE)
    started = time.process_time()
    for i in range(0, len(far), BLOCK):
        aec.process(near[i : i + BLOCK], far[i : i + BLOCK])
    return (time.process_time() - started) / (len(far) // BLOCK) * 1e6


async def session_cpu(answer: Samples, with_answer: bool) -> float:
    """CPU seconds per second of call of the gateway's ``ServerEcho`` path."""
    total = PLAY_AT + len(answer) / INPUT_RATE
    played = answer if with_answer else np.zeros(0)
    _, events = call_events(EchoPath(150, 15), played, np.zeros(0), PLAY_AT, total)
    if not with_answer:
        events = [e for e in events if e[1] == 1]
    echo = ServerEcho(OUTPUT_RATE)
    started = time.process_time()
    await replay(echo, events)
    return (time.process_time() - started) / (total - PLAY_AT)


def longest_speech_ms(pcm: Samples, start_s: float, end_s: float) -> float:
    """The longest run of VAD speech frames between ``start_s`` and ``end_s``."""
    frames = VadFrames().push(pcm_bytes(pcm))
    longest = run = 0.0
    step = frames[1].offset_ms - frames[0].offset_ms
    for frame in frames:
        inside = start_s * 1000 <= frame.offset_ms < end_s * 1000
        run = run + step if inside and frame.probability >= SPEECH_PROBABILITY else 0.0
        longest = max(longest, run)
    return longest


async def echo_set(delays: list[int], attenuations: list[float]) -> dict[str, int]:
    """Self-interruptions without and with AEC, real interruptions caught with AEC."""
    barge_ms = InterruptSensitivity.MEDIUM.barge_in_ms
    assert barge_ms is not None
    question = pcm_array(spoken(QUESTION))
    near = np.concatenate((np.zeros(int(SPEECH_AT * INPUT_RATE)), question))
    counts = dict.fromkeys(
        ("cases", "self_off", "self_on", "real", "real_caught_on", "clean", "clean_caught_on"), 0
    )
    for n, (text, delay, attenuation) in enumerate(
        itertools.product(ANSWERS, delays, attenuations)
    ):
        answer = pcm_array(spoken(text))
        end = PLAY_AT + len(answer) / INPUT_RATE + TAIL_S
        path = EchoPath(delay, attenuation, seed=n)
        mic, events = call_events(path, answer, near[:0], PLAY_AT, end)
        out = await replay(ServerEcho(OUTPUT_RATE), events)
        counts["cases"] += 1
        counts["self_off"] += longest_speech_ms(mic, PLAY_AT, end) >= barge_ms
        counts["self_on"] += longest_speech_ms(out, PLAY_AT, end) >= barge_ms
        path = EchoPath(delay, attenuation, seed=n)
        _, events = call_events(path, answer, near, PLAY_AT, end)
        talked = await replay(ServerEcho(OUTPUT_RATE), events)
        counts["real"] += 1
        counts["real_caught_on"] += longest_speech_ms(talked, SPEECH_AT, end) >= barge_ms
        if attenuation == attenuations[0]:  # and once per delay without any echo (headphones)
            _, events = call_events(EchoPath(delay, 200, seed=n), answer, near, PLAY_AT, end)
            clean = await replay(ServerEcho(OUTPUT_RATE), events)
            counts["clean"] += 1
            counts["clean_caught_on"] += longest_speech_ms(clean, SPEECH_AT, end) >= barge_ms
    return counts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio for the AEC3 timing")
    parser.add_argument("--delays", default="60,120,180,250", help="echo delays, ms")
    parser.add_argument("--attenuations", default="10,15,20", help="echo attenuations, dB")
    args = parser.parse_args()
    block_us = aec3_block_us(args.seconds)
    print(f"AEC3 alone: {block_us:.0f} µs per 10 ms block ({block_us / 100:.2f} % of a core)")
    answer = pcm_array(spoken(" ".join(ANSWERS)))
    for with_answer, label in ((True, "assistant speaking"), (False, "assistant silent")):
        share = await session_cpu(answer, with_answer)
        print(f"ServerEcho per session, {label}: {share * 100:.2f} % of a core")
    delays = [int(d) for d in args.delays.split(",")]
    attenuations = [float(a) for a in args.attenuations.split(",")]
    counts = await echo_set(delays, attenuations)
    print(
        f"echo set: {counts['cases']} answers over echo; self-interruptions without AEC"
        f" {counts['self_off']}, with server AEC {counts['self_on']}; a question spoken over"
        f" the echo heard with server AEC {counts['real_caught_on']} of {counts['real']}; without"
        f" any echo (headphones) {counts['clean_caught_on']} of {counts['clean']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
