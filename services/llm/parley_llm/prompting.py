"""Few-shot chat prompting for a tiny *base* model, and cleaning what it writes back.

The offline model (Gemma 3 270M, not instruction-tuned) has no chat template and does not follow
instructions; it continues text. So the conversation is written as a transcript ("User: ... /
Assistant: ...") after a few short example exchanges, and the model continues the assistant's
line. This is an offline demo model: its answers are short and often wrong or odd, and nothing
here pretends otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from parley_llm.providers.base import ChatMessage

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful voice assistant. You answer in one or two short spoken sentences."
)

# Frames the examples and the history as one transcript, which a base model continues in kind.
_FRAMING = (
    "Below is a transcript of a spoken conversation between a user and the assistant. "
    "The assistant answers briefly and politely, in plain words."
)

# Short, correct, spoken-style answers: the model copies their length and tone.
_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("How are you today?", "I'm doing well, thanks for asking! What can I do for you?"),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    (
        "Any tips for sleeping better?",
        "Try to go to bed at the same time every night, and keep screens out of the bedroom.",
    ),
)

_SPEAKER = {"user": "User", "assistant": "Assistant"}
# Old turns are dropped in blocks of this many messages (four exchanges).
_DROP_STEP = 8

# The model must never write the user's next line (or a new assistant line of its own).
STOP_SEQUENCES: tuple[str, ...] = ("\nUser:", "\nAssistant:", "User:")


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered prompt: the text to complete, where to stop, and how many turns were dropped."""

    text: str
    stop: tuple[str, ...]
    dropped_turns: int


def build_prompt(
    messages: Sequence[ChatMessage],
    *,
    max_prompt_tokens: int,
    count_tokens: Callable[[str], int],
) -> Prompt:
    """Render ``messages`` as a few-shot transcript ending in an open ``Assistant:`` line.

    System messages (or ``DEFAULT_SYSTEM_PROMPT`` when there are none) go on top, then the
    framing and the example exchanges, then the conversation. When it would exceed
    ``max_prompt_tokens`` (as measured by ``count_tokens``), the oldest turns are dropped,
    several at a time (see ``_first_kept_turn``); the system prompt and the examples are always
    kept, and if even the latest turn alone does not fit, its beginning is cut.

    Raises:
        ValueError: the system prompt and examples alone exceed ``max_prompt_tokens``.
    """
    system = "\n".join(m.content.strip() for m in messages if m.role == "system" and m.content)
    header = "\n".join(
        [system or DEFAULT_SYSTEM_PROMPT, "", _FRAMING, ""]
        + [_line("user", user) + _line("assistant", answer) for user, answer in _EXAMPLES]
    )
    cue = "Assistant:"
    fixed = count_tokens(header) + count_tokens(cue)
    if fixed > max_prompt_tokens:
        raise ValueError(
            f"the system prompt and examples need {fixed} tokens, more than the "
            f"{max_prompt_tokens} available for the prompt"
        )
    turns = [_line(m.role, m.content) for m in messages if m.role != "system" and m.content]
    budget = max_prompt_tokens - fixed
    kept = turns[_first_kept_turn([count_tokens(line) for line in turns], budget) :]
    if not kept and turns:
        kept = [_cut_front(turns[-1], budget, count_tokens)]
    return Prompt(
        text=header + "".join(kept) + cue,
        stop=STOP_SEQUENCES,
        dropped_turns=len(turns) - len(kept),
    )


def _first_kept_turn(costs: list[int], budget: int) -> int:
    """Index of the oldest turn to keep so that the turns from there fit ``budget``.

    Turns are dropped ``_DROP_STEP`` at a time, counted from the start of the conversation, so
    the kept transcript begins at the same turn for several exchanges in a row: llama.cpp then
    reuses the prompt it already evaluated instead of re-reading all of it (seconds on a CPU)
    on every turn. Only when no step boundary leaves a turn are turns dropped one by one.
    """
    fits_from, total = len(costs), 0
    while fits_from > 0 and total + costs[fits_from - 1] <= budget:
        fits_from -= 1
        total += costs[fits_from]
    aligned = -(-fits_from // _DROP_STEP) * _DROP_STEP
    return aligned if aligned < len(costs) else fits_from


def _line(role: str, content: str) -> str:
    # Each message is flattened to one line: a newline inside it would end its transcript
    # line early, and a "User:" it contains could start a line of its own, as a new speaker.
    return f"{_SPEAKER[role]}: {' '.join(content.split())}\n"


def _cut_front(line: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest end of ``line`` (whole words, speaker label kept) that fits ``budget``."""
    label, _, text = line.partition(": ")
    words = text.split()
    low, high = 0, len(words)  # the answer is the smallest number of leading words to drop
    while low < high:
        mid = (low + high) // 2
        if count_tokens(f"{label}: {' '.join(words[mid:])}\n") <= budget:
            high = mid
        else:
            low = mid + 1
    return f"{label}: {' '.join(words[low:])}\n"


_SPEAKER_PREFIX = re.compile(r"(?:assistant|ai|parley)\s*:\s*", re.IGNORECASE)
_SPEAKER_NAMES = ("assistant:", "ai:", "parley:")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s)")
_NON_WORD = re.compile(r"[^\w\s']+")


def _normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


class ReplyFilter:
    """Turns the model's raw continuation into what the assistant says, delta by delta.

    It drops leading whitespace and a leading speaker label ("Assistant: ..."), ends the reply
    at the first line break (a base model that starts a new paragraph has stopped answering),
    and ends it on degenerate repetition: a sentence that repeats an earlier one (which is never
    emitted) or a short phrase repeated over and over. Text is emitted as soon as it cannot be
    part of a repeat, so the first sentence streams without delay.
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
        if not self._started and not self._strip_lead():
            return ""
        line_ended = "\n" in self._pending
        if line_ended:
            self._pending = self._pending.split("\n", 1)[0]
        out = self._drain(final=line_ended)
        self.finished = self.finished or line_ended
        return out

    def flush(self) -> str:
        """The model has stopped: return whatever was held back, unless it is a repeat."""
        if self.finished:
            return ""
        # Text held only because it might have become a speaker label ("A") is the answer.
        self._started = True
        out = self._drain(final=True)
        self.finished = True
        return out

    def _strip_lead(self) -> bool:
        """Drop leading blanks and a speaker label; False while it is too early to tell."""
        self._pending = self._pending.lstrip()
        lowered = self._pending.lower()
        if any(name.startswith(lowered) for name in _SPEAKER_NAMES):
            return False  # could still become "Assistant:"
        match = _SPEAKER_PREFIX.match(self._pending)
        if match:
            self._pending = self._pending[match.end() :]
            return self._strip_lead()
        self._started = True
        return True

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
