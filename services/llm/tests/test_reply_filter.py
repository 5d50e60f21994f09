"""The reply filter: what the offline model's answer becomes before anyone hears it."""

from __future__ import annotations

import re

from parley_llm.reply_filter import ReplyFilter


def feed_all(text: str) -> tuple[str, list[str]]:
    """Feed ``text`` token-like (a word with its leading space) and collect what comes out."""
    reply = ReplyFilter()
    emitted: list[str] = []
    for delta in re.findall(r"\s*\S+|\s+", text):
        emitted.append(reply.feed(delta))
        if reply.finished:
            break
    emitted.append(reply.flush())
    return "".join(emitted), emitted


def test_filter_drops_a_repeated_sentence_and_stops() -> None:
    said, _ = feed_all(" You're not alone. I'm here. You're not alone. You're not alone.")
    assert said == "You're not alone. I'm here."


def test_filter_lets_a_sentence_that_only_starts_like_an_earlier_one_through() -> None:
    said, _ = feed_all(" I like it. I like it a lot.")
    assert said == "I like it. I like it a lot."


def test_filter_releases_held_text_that_ends_up_no_repeat() -> None:
    # "I like" is held (it may be repeating "I like it."), then the model stops.
    assert feed_all(" I like it. I like")[0] == "I like it. I like"


def test_filter_stops_a_phrase_loop() -> None:
    said, _ = feed_all(" apples and pears, apples and pears, apples and pears, apples and pears")
    assert said.count("apples") < 4
    assert said.startswith("apples and pears,")


def test_filter_streams_the_first_sentence_without_holding_it_back() -> None:
    _, emitted = feed_all(" The capital of France is Paris.")
    # Each word comes out as it goes in (the final flush has nothing left).
    assert all(emitted[:-1])
    assert emitted[-1] == ""


def test_filter_drops_leading_blanks_and_keeps_line_breaks_inside() -> None:
    said, _ = feed_all("\n  Sure! Here is one:\n\nWhy did the chicken cross the road?")
    assert said == "Sure! Here is one:\n\nWhy did the chicken cross the road?"
    assert feed_all("   ")[0] == ""
