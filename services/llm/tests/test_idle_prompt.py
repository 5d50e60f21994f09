"""The "are you still there?" question in each of the nine languages."""

from __future__ import annotations

from parley_common.languages import SUPPORTED_LANGUAGES
from parley_llm.idle_prompt import still_there


def test_every_language_has_its_own_question() -> None:
    questions = {code: still_there(code) for code in SUPPORTED_LANGUAGES}
    assert len(set(questions.values())) == len(SUPPORTED_LANGUAGES)
    assert questions["en"] == "Are you still there?"
    assert questions["es"] == "¿Sigues ahí?"


def test_a_region_tag_picks_its_language_and_the_unknown_english() -> None:
    assert still_there("pt-BR") == still_there("pt")
    assert still_there("zh_Hans") == still_there("zh")
    assert still_there(None) == still_there("en")
    assert still_there("ru") == still_there("en")
