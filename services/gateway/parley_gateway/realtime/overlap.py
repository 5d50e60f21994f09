"""What the user's speech over the assistant was: an interruption, or a backchannel or noise
to resume after. Pure state, no I/O: ``barge_in.py`` feeds it events and asks it when to
look again.

Words decide first: a word that is not a backchannel and that the recogniser is sure of is
an interruption; only backchannels ("mm-hmm", "yeah") and the speech stopped is a resume.
The words come with the pause: when the user falls silent the STT publishes what it heard
(empty when it heard no words), about a Whisper run after the speech stops.

How sure is sure: Whisper turns a murmured "mm-hmm" into words, mostly with a word
probability of 0.1-0.4 ("Ememam", "Tim") but up to ~0.8 ("In my mom" with "mom" at 0.78,
"All light" 0.70), while the words of a real interruption that are not stop words come at
0.8-1.0 when there are several ("Can you repeat that?"), measured on Piper and eSpeak NG
voices (docs/benchmarks.md). So a word under 0.4 is no evidence at all, and a non-backchannel
word needs 0.8 to interrupt. Two kinds of words bypass that: a stop word ("stop", "wait",
"no") interrupts however unsure, a one-word question or call ("what?", "hello?") at 0.4.

Without such words, length decides. Backchannels are short: all but eSpeak's "mm-hm" (1.0-1.1
s) last under 0.9 s of voice in that set, while the interruptions Whisper garbles ("Hanyangase
kund" for "Hang on a second") last 1.1 s or more. So speech that stopped with only doubtful
words is an interruption past ``LONG_SPEECH_S`` and a noise before (a one-second hum Whisper
writes as words is cut: the price of missing no garbled "hang on"); speech still going that
long after its onset (with the STT's report of the stop as slack) is one too, and anything
past ``MAX_OVERLAP_S`` is, whatever its words. Speech in which the recogniser heard no word
at all is noise, however long (Whisper hears no words in a hum it cannot place). When the
STT gives no pause transcript (a provider that does not, or one too late), speech longer
than the decision window counts as talk.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parley_common.backchannels import has_question_word, has_stop_word, is_backchannel, words
from parley_common.contracts.bus import Transcript

# The STT reports a stop a hangover (~100 ms) after the voice ends, and a loaded worker
# later still: speech still "going" this long after a limit may have ended inside it.
STOP_REPORT_SLACK_S = 0.5
# A resume waits until the user has been quiet this long after the STT's stop (itself ~0.1
# s after the voice): a pause at a comma ("No, | hold on") is not the end of what they say.
SETTLE_S = 0.3
# Voice longer than this is talk, not a backchannel (see above).
LONG_SPEECH_S = 1.0
# Speech still "going" this long after its onset is longer than LONG_SPEECH_S for sure.
STILL_GOING_S = LONG_SPEECH_S + STOP_REPORT_SLACK_S
# Backchannels go on this long at most ("yeah, yeah, okay, sure"); past it, whatever the
# words, the user has taken the turn.
MAX_OVERLAP_S = 2.0
# Fast speech is 4-5 words a second; a transcript with more than this many words in the
# audio it covers is invented, and none of its words count.
MOST_WORDS, MOST_WORDS_PER_S = 2, 6.0
# Words recognised with less confidence than this do not count (see above).
MIN_WORD_CONFIDENCE = 0.4
# A word that is not a backchannel interrupts only from this confidence (see above).
SURE_WORD_CONFIDENCE = 0.8


class Verdict(StrEnum):
    """How an overlap was judged (the metric's ``kind`` label)."""

    WORDS = "words"  # words that are not a backchannel: interrupt
    LONG = "long"  # speech too long for a backchannel, without words that say otherwise
    BACKCHANNEL = "backchannel"  # only backchannel words: resume
    NOISE = "noise"  # short, no words: resume

    @property
    def interrupts(self) -> bool:
        """Whether the assistant's turn is cancelled."""
        return self in (Verdict.WORDS, Verdict.LONG)


@dataclass
class Overlap:
    """One stretch of the user's speech over an audible turn, from its onset."""

    onset: float  # perf_counter time the speech started
    window_s: float
    transcript_wait_s: float
    language: str | None = None
    stopped_at: float | None = None  # None: still speaking
    speech_ms: int = 0
    text: str = ""  # the latest transcript of the overlap, as the recogniser wrote it
    heard_words: str = ""  # its words the recogniser does not doubt (>= MIN_WORD_CONFIDENCE)
    said: str = ""  # what those words count as: a backchannel, or the words it is sure of
    transcribed: bool = False  # the STT's transcript of the pause came (perhaps no words)
    invented: bool = False  # that text has more words than its audio can hold

    def speech_started(self) -> None:
        """The user spoke again before the verdict: the same overlap goes on."""
        self.stopped_at = None
        self.transcribed = False

    def speech_stopped(self, now: float, speech_ms: int) -> None:
        """The user stopped after ``speech_ms`` of voice; the pause's transcript follows."""
        self.stopped_at = now
        self.speech_ms = speech_ms
        self.transcribed = False

    def heard(self, transcript: Transcript) -> None:
        """A transcript of the overlap so far (a partial, the pause's, or a final)."""
        if self.stopped_at is not None:
            self.transcribed = True  # what the STT heard up to the pause, words or none
        if not words(transcript.text):
            return
        self.text = transcript.text
        self.language = transcript.language or self.language
        # A partial has no word probabilities; its utterance's stands in for each word.
        scored = [(w.word, w.confidence) for w in transcript.words] or [
            (w, transcript.confidence) for w in transcript.text.split()
        ]
        self.invented = _invented(len(scored), transcript.audio_ms)
        if self.invented:
            scored = [(w, 0.0) for w, _ in scored]  # not one of them is evidence
        self.heard_words = _above(scored, MIN_WORD_CONFIDENCE)
        if is_backchannel(self.heard_words, self.language):
            self.said = self.heard_words
        else:
            self.said = _above(scored, SURE_WORD_CONFIDENCE)

    def verdict(self, now: float) -> Verdict | None:
        """The verdict at ``now``, or None while it cannot be given yet."""
        if has_stop_word(self.text, self.language) and not self.invented:
            return Verdict.WORDS  # however unsure the recogniser is of it
        if has_question_word(self.heard_words, self.language):
            return Verdict.WORDS
        if self.said and not is_backchannel(self.said, self.language):
            return Verdict.WORDS
        if self.stopped_at is None:  # still speaking
            if now - self.onset >= MAX_OVERLAP_S:
                return Verdict.LONG
            if not self.said and now - self.onset >= STILL_GOING_S:
                return Verdict.LONG
            return None
        settled = now - self.stopped_at >= SETTLE_S
        if self.said:
            return Verdict.BACKCHANNEL if settled else None
        waited = now - self.stopped_at >= self.transcript_wait_s
        if not (self.transcribed or waited):
            return None  # the pause's words are on their way
        if self.text:  # only words the recogniser doubts: talk if it went on
            long = self.speech_ms > LONG_SPEECH_S * 1000
        else:  # no words in it at all, or none came: its length alone
            long = not self.transcribed and self.speech_ms > self.window_s * 1000
        if long:
            return Verdict.LONG
        return Verdict.NOISE if settled else None

    def next_look(self, now: float) -> float:
        """Seconds from ``now`` until the verdict may change without a new event."""
        if self.stopped_at is not None:
            later = [self.stopped_at + SETTLE_S, self.stopped_at + self.transcript_wait_s]
            due = min((t for t in later if t > now), default=now)
        elif self.said:
            due = self.onset + MAX_OVERLAP_S
        else:
            due = self.onset + min(MAX_OVERLAP_S, STILL_GOING_S)
        return max(0.0, due - now)


def _invented(word_count: int, audio_ms: int) -> bool:
    """Whether ``word_count`` words are more than ``audio_ms`` of speech can hold: Whisper
    looping over a hum, or inventing a sentence after it ("M M M M M M M M M M M M This is
    a good thing." for a 0.45 s "mm-hmm"). Unknown length (0): no judgement."""
    return audio_ms > 0 and word_count > MOST_WORDS + MOST_WORDS_PER_S * audio_ms / 1000


def _above(scored: list[tuple[str, float | None]], confidence: float) -> str:
    """The words recognised with at least ``confidence`` (or with none given)."""
    return " ".join(w for w, c in scored if c is None or c >= confidence)
