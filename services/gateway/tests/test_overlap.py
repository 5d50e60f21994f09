"""Speech over the assistant, judged: backchannels and noise resume, words and long speech
interrupt (the verdict alone, then the policy pausing and resuming a turn)."""

from __future__ import annotations

import asyncio
import time

import pytest

from parley_common.backchannels import (
    BACKCHANNELS,
    RecentOverlaps,
    has_question_word,
    has_stop_word,
    is_backchannel,
)
from parley_common.contracts.bus import Transcript, Word
from parley_common.contracts.session import InterruptSensitivity
from parley_common.languages import SUPPORTED_LANGUAGES
from parley_gateway.realtime.barge_in import BargeInPolicy, Judging
from parley_gateway.realtime.overlap import (
    LONG_SPEECH_S,
    MAX_OVERLAP_S,
    SETTLE_S,
    STOP_REPORT_SLACK_S,
    Overlap,
    Verdict,
)

WINDOW_S, WAIT_S = 0.5, 0.4
SETTLED = SETTLE_S + 0.001  # quiet long enough after the stop for a resume


def said(text: str, *confidences: float) -> Transcript:
    """A transcript of ``text``, its words recognised with ``confidences`` (if given)."""
    tokens = text.split()[: len(confidences)]
    sure = [
        Word(word=w, start=0, end=0, confidence=c) for w, c in zip(tokens, confidences, strict=True)
    ]
    return Transcript(text=text, is_final=False, language="en", words=tuple(sure))


def overlap() -> Overlap:
    return Overlap(onset=100.0, window_s=WINDOW_S, transcript_wait_s=WAIT_S, language="en")


@pytest.mark.parametrize(
    "text",
    [
        "Mm-hmm.",
        "Yeah.",
        "Okay.",
        "Uh-huh.",
        "Right.",
        "M M M.",
        "M.H.M.H.M.",
        "yeah, yeah",
        "All right",
        "M.M.H.N.",  # Whisper spelling a hum: letters only
        "P-E-E-T",
        "M-M-T-M-T-M-T-M-",
        "MMHM",  # ... or as a run of hum letters
        "Mmh.",
        "Mmhm, yeah.",
    ],
)
def test_backchannels_are_recognised(text: str) -> None:
    assert is_backchannel(text, "en")


@pytest.mark.parametrize(
    "text",
    ["Wait.", "Stop.", "No, hold on.", "okay but why", "", "...", "M.M.A. Kim", "Mom.", "Hmm, no"],
)
def test_other_words_are_not_backchannels(text: str) -> None:
    assert not is_backchannel(text, "en")


def test_every_language_has_its_list_and_unknown_language_takes_all() -> None:
    assert set(BACKCHANNELS) == set(SUPPORTED_LANGUAGES)
    assert is_backchannel("vale", "es-ES")
    assert not is_backchannel("vale", "en")
    assert is_backchannel("うん", None)


def test_stop_and_question_words_are_whole_words_except_in_unspaced_scripts() -> None:
    assert has_stop_word("Arrête !", "fr")
    assert has_question_word("Hä?", "de")
    assert not has_question_word("Ich hätte gern Tee.", "de")  # "hä" inside a word
    assert not has_stop_word("Nothing to see.", "en")
    assert has_question_word("你说什么？", "zh")
    assert has_stop_word("ちょっと待って", "ja")


def test_a_deployment_adds_phrases(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_backchannel("gotcha", "en")
    monkeypatch.setenv("PARLEY_BACKCHANNELS_EN", "gotcha, fair enough")
    assert is_backchannel("Gotcha, fair enough.", "en")


def test_a_backchannel_that_stopped_resumes() -> None:
    o = overlap()
    o.speech_stopped(100.3, speech_ms=280)
    assert o.verdict(100.35) is None  # its words may be on the way
    o.heard(said("Yeah."))
    assert o.verdict(100.3 + SETTLED) is Verdict.BACKCHANNEL


def test_words_the_recogniser_doubts_are_no_interruption() -> None:
    mumble = overlap()
    mumble.speech_stopped(100.4, speech_ms=450)
    mumble.heard(said("Emma Chen", 0.32, 0.24))  # Whisper on a murmured "mhm"
    assert mumble.verdict(100.4 + WAIT_S) is Verdict.NOISE
    sure = overlap()
    sure.heard(said("Hold on.", 0.45, 0.42))
    assert sure.verdict(100.2) is Verdict.WORDS
    clipped = overlap()
    clipped.speech_stopped(100.3, speech_ms=300)
    clipped.heard(said("Stop.", 0.2))  # a stop word interrupts however unsure
    assert clipped.verdict(100.3) is Verdict.WORDS


def test_words_it_is_not_sure_of_do_not_cut_a_short_overlap() -> None:
    # What Whisper made of Piper's and eSpeak's hums, with its word probabilities.
    for hum in (
        said("Emma Machin", 0.63, 0.43),
        said("In my mom.", 0.2, 0.44, 0.78),
        said("All light.", 0.46, 0.70),
        said("M .M .A. Kim", 0.27, 0.39, 0.83, 0.42),  # Whisper's words of "M.M.A. Kim"
    ):
        o = overlap()
        o.speech_stopped(100.5, speech_ms=450)
        o.heard(hum)
        assert o.verdict(100.5 + SETTLED) in (Verdict.NOISE, Verdict.BACKCHANNEL), hum.text
    sure = overlap()
    sure.speech_stopped(100.6, speech_ms=550)
    sure.heard(said("Tuesday.", 0.8))
    assert sure.verdict(100.6) is Verdict.WORDS
    mixed = overlap()  # only the backchannel is sure: that is what counts
    mixed.speech_stopped(100.5, speech_ms=450)
    mixed.heard(said("Yeah Emma", 0.8, 0.5))
    assert mixed.verdict(100.5 + SETTLED) is Verdict.BACKCHANNEL


def test_unsure_words_do_not_hold_off_speech_that_goes_on() -> None:
    going = LONG_SPEECH_S + STOP_REPORT_SLACK_S  # the stop of a long hum may be on its way
    o = overlap()
    o.heard(said("Hanyangase kund", 0.37, 0.53))
    assert o.verdict(100.0 + going - 0.01) is None
    assert o.verdict(100.0 + going) is Verdict.LONG
    assert o.next_look(100.5) == pytest.approx(going - 0.5)  # its LONG look is due
    stopped = overlap()  # as long as a sentence, with only doubtful words: talk
    stopped.speech_stopped(101.3, speech_ms=1150)
    stopped.heard(said("Hanyangase kund", 0.37, 0.53))
    assert stopped.verdict(101.3) is Verdict.LONG


def test_a_pause_transcript_without_words_is_noise_however_long() -> None:
    o = overlap()
    o.speech_stopped(101.2, speech_ms=1050)  # eSpeak's "Mm-hm": Whisper hears no words
    assert o.verdict(101.2) is None
    o.heard(Transcript(text="", is_final=False, language="en"))
    assert o.verdict(101.2 + SETTLED) is Verdict.NOISE
    resumed = overlap()  # the pause's transcript is of the pause, not of speech after it
    resumed.speech_stopped(100.3, speech_ms=250)
    resumed.heard(Transcript(text="", is_final=False, language="en"))
    resumed.speech_started()
    resumed.speech_stopped(100.8, speech_ms=300)
    assert resumed.verdict(100.8) is None


def test_more_words_than_the_audio_can_hold_are_no_evidence() -> None:
    invented = "M M M M M M M M M M M M This is a good thing. I'm going to do it."
    o = overlap()
    o.speech_stopped(100.5, speech_ms=450)
    o.heard(Transcript(text=invented, is_final=False, language="en", audio_ms=900, confidence=0.9))
    assert o.verdict(100.5 + SETTLED) is Verdict.NOISE
    looped = overlap()  # not even a stop word in it counts
    looped.speech_stopped(100.5, speech_ms=450)
    looped.heard(Transcript(text="No. " * 10, is_final=False, language="en", audio_ms=900))
    assert looped.verdict(100.5 + SETTLED) is Verdict.NOISE
    spoken = overlap()  # five words in 1.5 s are speech
    spoken.speech_stopped(101.5, speech_ms=1200)
    five = said("Wait, stop, what about tomorrow?", 0.9, 0.9, 0.9, 0.9, 0.9)
    spoken.heard(five.model_copy(update={"audio_ms": 1500}))
    assert spoken.verdict(101.5) is Verdict.WORDS


def test_a_one_word_question_interrupts_when_the_recogniser_does_not_doubt_it() -> None:
    asked = overlap()
    asked.speech_stopped(100.5, speech_ms=400)
    asked.heard(said("What?", 0.46))
    assert asked.verdict(100.5) is Verdict.WORDS
    doubted = overlap()
    doubted.speech_stopped(100.5, speech_ms=400)
    doubted.heard(said("What?", 0.3))
    assert doubted.verdict(100.5 + SETTLED) is Verdict.NOISE


def test_a_partial_without_word_probabilities_counts_by_its_own() -> None:
    def partial(confidence: float) -> Transcript:
        return Transcript(text="Emma Macon.", is_final=False, language="en", confidence=confidence)

    doubted = overlap()
    doubted.speech_stopped(100.5, speech_ms=450)
    doubted.heard(partial(0.35))
    assert doubted.verdict(100.5 + SETTLED) is Verdict.NOISE
    sure = overlap()
    sure.heard(partial(0.9))
    assert sure.verdict(100.2) is Verdict.WORDS


def test_words_interrupt_at_once_even_while_speaking() -> None:
    o = overlap()
    o.heard(said("Wait."))
    assert o.verdict(100.2) is Verdict.WORDS


def test_short_speech_without_words_is_noise_after_the_wait() -> None:
    o = overlap()
    o.speech_stopped(100.3, speech_ms=250)
    assert o.verdict(100.3 + WAIT_S - 0.01) is None
    assert o.verdict(100.3 + WAIT_S) is Verdict.NOISE
    assert o.next_look(100.3) == pytest.approx(SETTLE_S)  # then the wait's end
    assert o.next_look(100.3 + SETTLED) == pytest.approx(WAIT_S - SETTLED)


def test_a_pause_at_a_comma_does_not_resume_before_the_user_goes_on() -> None:
    o = overlap()  # eSpeak's "No, hold on.": Whisper made "now" of the "No,"
    o.speech_stopped(100.4, speech_ms=300)
    o.heard(said("now", 0.5))
    assert o.verdict(100.4 + SETTLE_S - 0.01) is None
    o.speech_started()
    o.speech_stopped(101.2, speech_ms=500)
    o.heard(said("And now, go down.", 0.9, 0.85, 0.9, 0.95))
    assert o.verdict(101.2) is Verdict.WORDS


def test_speech_that_goes_on_past_the_longest_backchannel_interrupts() -> None:
    o = overlap()
    assert o.verdict(100.0 + LONG_SPEECH_S) is None  # a stop may still be on its way
    assert o.verdict(100.0 + LONG_SPEECH_S + STOP_REPORT_SLACK_S) is Verdict.LONG
    # No transcript of the pause came at all: longer than the decision window is talk.
    untranscribed = overlap()
    untranscribed.speech_stopped(100.8, speech_ms=700)
    assert untranscribed.verdict(100.8 + WAIT_S) is Verdict.LONG


def test_a_backchannel_still_going_waits_up_to_the_limit() -> None:
    o = overlap()
    o.heard(said("yeah yeah"))
    assert o.verdict(101.5) is None
    assert o.verdict(100.0 + MAX_OVERLAP_S) is Verdict.LONG
    unsure = overlap()  # a backchannel needs no more than not being doubted
    unsure.heard(said("yeah yeah", 0.5, 0.45))
    assert unsure.verdict(101.5) is None
    unsure.speech_stopped(101.6, speech_ms=1400)
    assert unsure.verdict(101.6 + SETTLED) is Verdict.BACKCHANNEL


async def test_transcripts_wait_for_the_verdict_on_the_dialogue_side() -> None:
    answered: list[str] = []
    gate: RecentOverlaps[str] = RecentOverlaps(hold_s=0.2)
    assert not gate.hold("before", "Hello")  # nothing judged: answered at once
    gate.judging(answered.append)
    assert gate.hold("mm-hmm final", "Mm-hmm.")
    assert gate.dismissed("mm hmm")  # the backchannel is dropped
    assert answered == []
    gate.judging(answered.append)
    assert gate.hold("wait final", "Wait, stop.")
    gate.released()  # an interruption: answer it
    assert answered == ["wait final"]
    gate.judging(answered.append)
    assert gate.hold("lost verdict", "Hello?")
    await asyncio.sleep(0.3)  # no verdict came: answered anyway
    assert answered == ["wait final", "lost verdict"]


def test_a_dismissed_overlap_is_taken_once() -> None:
    recent: RecentOverlaps[str] = RecentOverlaps()
    recent.dismissed("Mm-hmm.")
    assert not recent.take("Tell me more.")
    assert recent.take("mm hmm")
    assert not recent.take("Mm-hmm.")


class Assistant:
    """An audible turn and what the policy did to it, in order."""

    def __init__(self, turn: int | None) -> None:
        self.turn = turn
        self.log: list[tuple[str, int, str]] = []

    def audible(self) -> int | None:
        return self.turn

    async def interrupt(self, turn_id: int, onset: float) -> None:
        self.log.append(("interrupt", turn_id, ""))

    async def pause(self, turn_id: int) -> None:
        self.log.append(("pause", turn_id, ""))

    async def resume(self, turn_id: int, text: str) -> None:
        self.log.append(("resume", turn_id, text))

    async def release(self, turn_id: int) -> None:
        self.log.append(("release", turn_id, ""))


def judged(
    assistant: Assistant, tg: asyncio.TaskGroup, sensitivity: str = "medium"
) -> BargeInPolicy:
    return BargeInPolicy(
        InterruptSensitivity(sensitivity),
        assistant.audible,
        assistant.interrupt,
        tg,
        Judging(assistant, window_s=0.3, transcript_wait_s=0.3),
    )


async def test_a_backchannel_pauses_then_resumes_the_turn() -> None:
    assistant = Assistant(turn=4)
    async with asyncio.TaskGroup() as tg:
        policy = judged(assistant, tg)
        policy.speech_started(time.perf_counter())
        await asyncio.sleep(0.05)
        assert assistant.log == [("pause", 4, "")]
        policy.speech_stopped(250)
        policy.heard(said("Mm-hmm."))
    assert assistant.log == [("pause", 4, ""), ("resume", 4, "Mm-hmm.")]


async def test_noise_resumes_and_words_interrupt() -> None:
    noise, words = Assistant(turn=1), Assistant(turn=2)
    async with asyncio.TaskGroup() as tg:
        quiet = judged(noise, tg)
        quiet.speech_started(time.perf_counter())
        quiet.speech_stopped(200)
        talk = judged(words, tg)
        talk.speech_started(time.perf_counter())
        await asyncio.sleep(0.05)
        talk.heard(said("Wait, stop."))
    assert noise.log == [("pause", 1, ""), ("resume", 1, "")]
    assert words.log == [("pause", 2, ""), ("interrupt", 2, ""), ("release", 2, "")]


async def test_low_sensitivity_never_pauses() -> None:
    assistant = Assistant(turn=1)
    async with asyncio.TaskGroup() as tg:
        policy = judged(assistant, tg, "low")
        policy.speech_started(time.perf_counter())
        await asyncio.sleep(0.5)
    assert assistant.log == []


async def test_a_turn_cut_before_its_pause_took_hold_is_not_paused() -> None:
    assistant = Assistant(turn=5)
    async with asyncio.TaskGroup() as tg:
        policy = judged(assistant, tg)
        policy.speech_started(time.perf_counter())
        assistant.turn = None  # withdrawn before the judgement's first step
        await asyncio.sleep(0.05)
        policy.speech_stopped(200)
    assert assistant.log == []
