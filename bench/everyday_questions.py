"""Issue 11's twelve everyday questions, each with a simple, robust check of its answer (a
fact named, a sensible reply): how much sense an offline model makes. Used by
tests/conversation/test_offline_answers.py and ``python -m bench.llm_profiles``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

REFUSALS = (
    "i can't",
    "i cannot",
    "i'm sorry",
    "i am sorry",
    "as an ai",
    "i'm unable",
    "i am unable",
)


def plain(text: str) -> str:
    """Lower case, accents dropped, punctuation as spaces: what the checks look into."""
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", stripped.lower()).split()) + " "


def says(*words: str) -> Callable[[str], bool]:
    """The answer contains one of ``words`` as whole words."""
    return lambda answer: any(f" {w} " in plain(answer) for w in words)


def says_all(*checks: Callable[[str], bool]) -> Callable[[str], bool]:
    """The answer passes every one of ``checks``."""
    return lambda answer: all(check(answer) for check in checks)


def not_a_refusal(answer: str) -> bool:
    """The model did not decline."""
    lowered = answer.lower().replace("’", "'")
    return not any(refusal in lowered for refusal in REFUSALS)


def a_joke(answer: str) -> bool:
    """Something shaped like a joke."""
    # A joke is a set-up and a punchline: a question and its answer, or a "because".
    return (
        len(answer.split()) >= 6
        and not_a_refusal(answer)
        and ("?" in answer or says("because")(answer))
    )


def a_book(answer: str) -> bool:
    """A history book named."""
    # A title (quoted or in italics) or "by <Author>", and history in it, not just any book.
    titled = bool(re.search(r"[\"“*_]\w|\bby [A-Z]", answer))
    return titled and says("history", "historical", "historian", "war", "empire", "sapiens")(answer)


@dataclass(frozen=True)
class Question:
    """A question and what a right (or sensible) answer to it contains."""

    text: str
    check: Callable[[str], bool]


QUESTIONS = (
    Question("What is the capital of France?", says("paris")),
    Question("How many legs does a spider have?", says("eight", "8")),
    Question("What is the tallest mountain in the world?", says("everest")),
    Question("How do I boil an egg?", says_all(says("water"), says("boil", "boiling"))),
    Question("What is two plus two?", says("four", "4")),
    Question("Who wrote Romeo and Juliet?", says("shakespeare")),
    Question("Can you recommend a good history book?", a_book),
    Question("What colour is the sky on a clear day?", says("blue")),
    Question(
        "Remind me to call my sister tomorrow.",
        # Taking it on, or saying how to, about this call: not the request echoed back.
        says_all(
            says("sister", "remind", "reminder", "call"),
            says("sure", "okay", "ok", "will", "ll", "can", "set", "noted", "alarm", "calendar"),
            lambda a: plain(a) != plain("Remind me to call my sister tomorrow."),
        ),
    ),
    Question("How do you say good morning in Spanish?", says("buenos dias", "buen dia")),
    Question(
        "What is the weather like in London in winter?",
        says("cold", "chilly", "cool", "mild", "rain", "rainy", "wet", "damp", "grey", "gray"),
    ),
    Question("Tell me a joke.", a_joke),
)
