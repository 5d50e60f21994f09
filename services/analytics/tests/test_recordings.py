"""Cutting a session's utterances and replies from its messages (no bus, no database)."""

from __future__ import annotations

import numpy as np

from parley_analytics.recordings import MAX_INPUT_S, MAX_PENDING_TURNS, SessionRecording

RATE = 16_000


def _pcm(seconds: float, value: int = 1000) -> bytes:
    return int(seconds * RATE) * value.to_bytes(2, "little", signed=True)


def _feed(rec: SessionRecording, seconds: float, offset: int, value: int = 1000) -> int:
    """``seconds`` of input in 20 ms frames from sample ``offset``; returns the next offset."""
    frame = 320
    for i in range(int(seconds * RATE) // frame):
        rec.audio_in(_pcm(frame / RATE, value), offset + i * frame)
    return offset + int(seconds * RATE) // frame * frame


def test_an_utterance_ends_at_the_last_stop_and_lasts_what_the_stt_heard() -> None:
    rec = SessionRecording("s")
    at = _feed(rec, 1.0, 0, value=0)  # silence
    at = _feed(rec, 1.5, at, value=500)  # speech 1.0-2.5 s
    rec.speech_stopped(2500)
    _feed(rec, 0.5, at, value=0)  # the silence that ends the turn
    rec.final_transcript(audio_ms=1500)
    clip = rec.user_turn(1)
    assert clip is not None
    assert (clip.turn_id, clip.role, clip.sample_rate) == (1, "user", RATE)
    assert clip.duration_s == 1.5
    # Exactly the speech: none of the silence before or after it.
    assert (np.frombuffer(clip.pcm, dtype="<i2") == 500).all()
    assert rec.user_turn(2) is None  # a typed turn after it has no audio


def test_utterances_take_the_spoken_turns_in_order() -> None:
    rec = SessionRecording("s")
    at = _feed(rec, 0.6, 0)
    rec.speech_stopped(600)
    rec.final_transcript(audio_ms=600)
    at = _feed(rec, 0.4, at)
    rec.speech_stopped(1000)
    rec.final_transcript(audio_ms=400)
    first, second = rec.user_turn(7), rec.user_turn(8)
    assert first is not None
    assert second is not None
    assert (first.turn_id, first.duration_s) == (7, 0.6)
    assert (second.turn_id, second.duration_s) == (8, 0.4)


def test_lost_frames_are_silence_and_old_input_is_forgotten() -> None:
    rec = SessionRecording("s")
    rec.audio_in(_pcm(0.1), 0)
    rec.audio_in(_pcm(0.1), int(0.3 * RATE))  # 0.2 s lost in between
    rec.speech_stopped(400)
    rec.final_transcript(audio_ms=400)
    clip = rec.user_turn(1)
    assert clip is not None
    assert clip.duration_s == 0.4
    assert clip.pcm[int(0.1 * RATE) * 2 : int(0.3 * RATE) * 2] == bytes(int(0.2 * RATE) * 2)
    long = SessionRecording("s")
    _feed(long, MAX_INPUT_S + 5, 0)
    long.final_transcript(audio_ms=(MAX_INPUT_S + 5) * 1000)
    clip = long.user_turn(1)
    assert clip is not None
    assert clip.duration_s == MAX_INPUT_S


def test_a_reply_is_stored_at_its_end_and_an_interrupted_one_as_far_as_it_got() -> None:
    rec = SessionRecording("s")
    rec.audio_out(1, bytes(4800), 24_000)
    rec.audio_out(1, bytes(4800), 24_000)
    done = rec.audio_out_end(1)
    assert done is not None
    assert (done.turn_id, done.role, done.duration_s, done.interrupted) == (
        1,
        "assistant",
        0.2,
        False,
    )
    rec.audio_out(2, bytes(2400), 24_000)
    cut = rec.interrupted(2)
    assert cut is not None
    assert cut.interrupted
    assert cut.duration_s == 0.05
    assert rec.audio_out(2, bytes(2400), 24_000) is None  # late chunks of the cut turn
    assert rec.audio_out_end(2) is None
    assert rec.interrupted(3) is None  # nothing was synthesised for it


def test_replies_in_flight_are_bounded_and_flushed_when_the_session_ends() -> None:
    rec = SessionRecording("s")
    pushed = [rec.audio_out(turn, bytes(480), 24_000) for turn in range(MAX_PENDING_TURNS + 1)]
    assert pushed[:-1] == [None] * MAX_PENDING_TURNS
    oldest = pushed[-1]
    assert oldest is not None
    assert (oldest.turn_id, oldest.interrupted) == (0, True)
    left = rec.close()
    assert [c.turn_id for c in left] == list(range(1, MAX_PENDING_TURNS + 1))
    assert rec.close() == []
