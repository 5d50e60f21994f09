"""Cleaning what the offline model writes back, delta by delta, before anyone hears it.

The instruct models end their answer themselves (an end-of-turn token); what a small model
still does is loop: say a sentence again, or repeat a short phrase over and over. The filter
cuts the answer there, and drops the blanks an answer may start with.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?]+(?=\s)")
_NON_WORD = re.compile(r"[^\w\s']+")


def _normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


class ReplyFilter:
    """Turns the model's raw answer into what the assistant says, delta by delta.

    It drops leading whitespace and ends the reply on degenerate repetition: a sentence that
    repeats an earlier one (which is never emitted) or a short phrase repeated over and over.
    Text is emitted as soon as it cannot be part of a repeat, so the first sentence streams
    without delay.
    """

    def __init__(self) -> None:
        self.finished = False
        self._started = False
        self._pending = ""  # received but not yet emitted
        self._sentence = ""  # the emitted part of the current sentence
        self._said: list[str] = []  # normalised sentences emitted so far

    def feed(self, delta: str) -> str:
        """Take the next raw delta; return the text that can be emitted now (maybe empty).

        Once ``finished`` is true the rest of the model's output is to be discarded.
        """
        if self.finished:
            return ""
        self._pending += delta
        if not self._started:
            self._pending = self._pending.lstrip()
            self._started = bool(self._pending)
        return self._drain(final=False)

    def flush(self) -> str:
        """The model has stopped: return whatever was held back, unless it is a repeat."""
        if self.finished:
            return ""
        out = self._drain(final=True)
        self.finished = True
        return out

    def _drain(self, *, final: bool) -> str:
        out: list[str] = []
        while self._pending and not self.finished:
            # The sentence's end may straddle what was emitted and what is new ("alone." then
            # " You"), so look for it in the whole current sentence.
            end = _SENTENCE_END.search(self._sentence + self._pending)
            if end is None and not final:
                out.append(self._emit_partial())
                break
            cut = end.end() - len(self._sentence) if end else len(self._pending)
            sentence = _normalise(self._sentence + self._pending[:cut])
            if sentence in self._said or _is_looping(sentence):
                self.finished = True
                break
            out.append(self._pending[:cut])
            self._pending = self._pending[cut:]
            self._sentence = ""
            if sentence:
                self._said.append(sentence)
        return "".join(out)

    def _emit_partial(self) -> str:
        """Emit the unfinished sentence's new text unless it may be repeating a said one."""
        sentence = _normalise(self._sentence + self._pending)
        if _is_looping(sentence):
            self.finished = True
            return ""
        if sentence and any(said.startswith(sentence) for said in self._said):
            return ""  # hold it back: it may turn out to be a repeat
        out, self._pending = self._pending, ""
        self._sentence += out
        return out


def _is_looping(sentence: str) -> bool:
    """Whether the sentence ends in a phrase of 1-4 words said three times in a row (four for
    a single word, so "no, no, no" survives)."""
    words = sentence.split()
    for size in range(1, 5):
        times = 4 if size == 1 else 3
        span = size * times
        if len(words) < span:
            continue
        tail = words[-span:]
        if all(tail[i] == tail[i % size] for i in range(span)):
            return True
    return False
