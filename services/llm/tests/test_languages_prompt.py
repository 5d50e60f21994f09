"""The dialogue's system prompt asks for answers in the language the user last spoke."""

from __future__ import annotations

import uuid

import asyncpg

from parley_llm.languages import answer_in
from parley_llm.memory import ConversationMemory


def _system(memory: ConversationMemory) -> str:
    first = memory.messages()[0]
    assert first.role == "system"
    return first.content


def test_the_instruction_names_the_language() -> None:
    assert answer_in("es") == "The user is speaking Spanish: answer in Spanish."
    assert "answer in Japanese" in answer_in("ja-JP")
    assert answer_in(None) == "Answer in the language the user speaks."
    assert answer_in("ru") == answer_in(None)  # never named when not one of the nine


async def test_the_prompt_follows_each_spoken_turn_and_a_typed_one_keeps_it(
    pool: asyncpg.Pool,
) -> None:
    memory = ConversationMemory(pool, str(uuid.uuid4()), "Sé breve.")
    assert _system(memory).endswith("Answer in the language the user speaks.")
    memory.add_user(1, "¿Qué hora es?", language="es")
    system = _system(memory)
    assert "Sé breve." in system
    # Last, after the session's own prompt: that one's language does not decide the answer's.
    assert system.endswith("answer in Spanish.")
    memory.add_user(2, "and in English?")  # typed: no language
    assert _system(memory).endswith("answer in Spanish.")
    memory.add_user(3, "Wie spät ist es?", language="de")
    system = _system(memory)
    assert system.endswith("answer in German.")
    assert "Spanish" not in system
    assert memory.language == "de"
