"""The default offline model answers everyday questions right: the twelve questions of
issue 11 (``bench.everyday_questions``), asked through the real local provider with the
dialogue session's system prompt.

At least 10 of the 12 answers must pass the check written for each, the bar the issue set.
Bounded for CI: one model load, short answers.
"""

from __future__ import annotations

import pytest

from bench.everyday_questions import QUESTIONS
from parley_llm.memory import DEFAULT_SYSTEM_PROMPT
from parley_llm.models import QUALITY
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import GenerationStats, LocalLlamaProvider

MAX_TOKENS = 48
REQUIRED = 10


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
        ("Remind me to call my sister tomorrow.", 8, False),
        ("The sky is blue.", 8, False),
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
