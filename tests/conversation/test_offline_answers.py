"""The default offline model answers everyday questions right: the twelve questions of
issue 11, asked through the real local provider with the dialogue session's system prompt.

At least 10 of the 12 answers must pass a simple check written for each (a fact named, a
sensible reply), the bar the issue set. Bounded for CI: one model load, short answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from parley_llm.memory import DEFAULT_SYSTEM_PROMPT
from parley_llm.models import QUALITY
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import GenerationStats, LocalLlamaProvider

MAX_TOKENS = 48
REQUIRED = 10
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
    return lambda answer: all(check(answer) for check in checks)


def not_a_refusal(answer: str) -> bool:
    lowered = answer.lower().replace("’", "'")
    return not any(refusal in lowered for refusal in REFUSALS)


def a_joke(answer: str) -> bool:
    # A joke is a set-up and a punchline: a question and its answer, or a "because".
    return (
        len(answer.split()) >= 6
        and not_a_refusal(answer)
        and ("?" in answer or says("because")(answer))
    )


def a_book(answer: str) -> bool:
    # A title (quoted or in italics) or "by <Author>", and history in it, not just any book.
    titled = bool(re.search(r"[\"“*_]\w|\bby [A-Z]", answer))
    return titled and says("history", "historical", "historian", "war", "empire", "sapiens")(answer)


@dataclass(frozen=True)
class Question:
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
        # Agreeing to it, or saying how, without talking about something else.
        says_all(says("sister", "remind", "reminder", "call"), lambda a: len(a.split()) >= 3),
    ),
    Question("How do you say good morning in Spanish?", says("buenos dias")),
    Question(
        "What is the weather like in London in winter?",
        says("cold", "chilly", "cool", "mild", "rain", "rainy", "wet", "damp", "grey", "gray"),
    ),
    Question("Tell me a joke.", a_joke),
)


@pytest.mark.parametrize(
    ("answer", "question", "passes"),
    [
        ("Paris is the capital of France.", 0, True),
        ("The capital is Lyon.", 0, False),
        ("A spider has eight legs.", 1, True),
        ("Spiders have five legs.", 1, False),
        ("¡Buenos días!", 9, True),
        ("Hola.", 9, False),
        ("Sure, I'll remind you to call your sister tomorrow.", 8, True),
        ("Why did the scarecrow win an award? Because he was outstanding in his field!", 11, True),
        ("I'm sorry, I can't tell jokes.", 11, False),
        ('Try "Sapiens" by Yuval Noah Harari, a short history of humankind.', 6, True),
        ('Try "The Great Gatsby" by F. Scott Fitzgerald.', 6, False),
    ],
)
def test_the_checks_tell_right_from_wrong(answer: str, question: int, passes: bool) -> None:
    assert QUESTIONS[question].check(answer) is passes


@pytest.mark.models
@pytest.mark.slow
async def test_the_default_model_answers_at_least_ten_of_twelve() -> None:
    stats: list[GenerationStats] = []
    provider = LocalLlamaProvider(QUALITY, on_stats=stats.append)
    results: list[tuple[str, str, bool]] = []
    for question in QUESTIONS:
        messages = [
            ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
            ChatMessage("user", question.text),
        ]
        parts = [delta async for delta in provider.stream(messages, MAX_TOKENS)]
        answer = "".join(parts).strip()
        results.append((question.text, answer, question.check(answer)))
        assert stats[-1].completion_tokens <= MAX_TOKENS

    report = "\n".join(f"{'ok ' if ok else 'BAD'} {q} -> {a!r}" for q, a, ok in results)
    print(report)
    assert sum(ok for _, _, ok in results) >= REQUIRED, report
