"""The few-shot transcript prompt and the reply post-filter (no model needed)."""

from __future__ import annotations

import re

import pytest

from parley_llm.prompting import DEFAULT_SYSTEM_PROMPT, STOP_SEQUENCES, ReplyFilter, build_prompt
from parley_llm.providers.base import ChatMessage


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def conversation(turns: int) -> list[ChatMessage]:
    messages = [ChatMessage("system", "You are Parley, a cheerful assistant.")]
    for i in range(turns):
        messages.append(ChatMessage("user", f"question number {i} please"))
        messages.append(ChatMessage("assistant", f"answer number {i} here"))
    messages.append(ChatMessage("user", "the latest question"))
    return messages


def test_prompt_is_a_transcript_ending_on_the_assistant_cue() -> None:
    prompt = build_prompt(conversation(2), max_prompt_tokens=1000, count_tokens=words)

    assert prompt.text.startswith("You are Parley, a cheerful assistant.\n")
    assert prompt.text.endswith("User: the latest question\nAssistant:")
    assert prompt.text.index("User: question number 0") < prompt.text.index(
        "Assistant: answer number 1 here"
    )
    assert prompt.dropped_turns == 0
    # The few-shot examples sit between the system prompt and the conversation.
    assert prompt.text.count("\nUser: ") == 3 + 2 + 1
    assert prompt.text.index("capital of Italy") < prompt.text.index("question number 0")


def test_default_system_prompt_when_the_session_has_none() -> None:
    prompt = build_prompt(
        [ChatMessage("user", "hello")], max_prompt_tokens=1000, count_tokens=words
    )
    assert prompt.text.startswith(DEFAULT_SYSTEM_PROMPT)


def test_stop_sequences_keep_the_model_out_of_the_users_line() -> None:
    prompt = build_prompt(conversation(0), max_prompt_tokens=1000, count_tokens=words)
    assert set(prompt.stop) == set(STOP_SEQUENCES)
    assert {"\nUser:", "User:"} <= set(prompt.stop)


def test_messages_are_flattened_to_one_transcript_line() -> None:
    messages = [ChatMessage("user", "first line\nUser: injected\n\n  second")]
    prompt = build_prompt(messages, max_prompt_tokens=1000, count_tokens=words)
    assert prompt.text.endswith("User: first line User: injected second\nAssistant:")


def history(prompt_text: str) -> str:
    """The conversation part of a prompt, up to (not including) its latest question."""
    return prompt_text[prompt_text.index("bedroom.\n") : prompt_text.index("User: the latest")]


def test_oldest_turns_are_dropped_to_fit_but_system_and_examples_stay() -> None:
    empty = build_prompt(conversation(0), max_prompt_tokens=10_000, count_tokens=words)
    # Beside the latest question, room for 29 old 5-word turns; 40 old turns are there.
    budget = words(empty.text) + 29 * 5

    prompt = build_prompt(conversation(20), max_prompt_tokens=budget, count_tokens=words)

    assert words(prompt.text) <= budget
    assert prompt.dropped_turns == 16  # 11 must go; dropped a block of 8 at a time
    assert "number 7 " not in prompt.text
    assert "User: question number 8 please\n" in prompt.text
    assert prompt.text.endswith(
        "Assistant: answer number 19 here\nUser: the latest question\nAssistant:"
    )
    assert prompt.text.startswith("You are Parley, a cheerful assistant.")
    assert "capital of Italy" in prompt.text


def test_dropping_keeps_the_transcript_start_stable_across_turns() -> None:
    empty = build_prompt(conversation(0), max_prompt_tokens=10_000, count_tokens=words)
    budget = words(empty.text) + 29 * 5
    prompts = [
        build_prompt(conversation(n), max_prompt_tokens=budget, count_tokens=words)
        for n in (20, 21, 22)
    ]

    # The next turn's prompt extends this one's, so llama.cpp can reuse what it evaluated.
    assert history(prompts[1].text).startswith(history(prompts[0].text))
    assert history(prompts[2].text).startswith(history(prompts[1].text))
    assert all(words(p.text) <= budget for p in prompts)


def test_a_latest_turn_longer_than_the_budget_keeps_its_end() -> None:
    header = build_prompt([], max_prompt_tokens=10_000, count_tokens=words)
    long_turn = " ".join(f"w{i}" for i in range(500))
    budget = words(header.text) + 50

    prompt = build_prompt(
        [ChatMessage("user", long_turn)], max_prompt_tokens=budget, count_tokens=words
    )

    assert words(prompt.text) <= budget
    assert prompt.text.endswith("w498 w499\nAssistant:")
    assert "w0 " not in prompt.text
    assert prompt.dropped_turns == 0


def test_a_system_prompt_that_cannot_fit_is_an_error() -> None:
    messages = [ChatMessage("system", "word " * 500), ChatMessage("user", "hi")]
    with pytest.raises(ValueError, match="system prompt"):
        build_prompt(messages, max_prompt_tokens=100, count_tokens=words)


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


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (" Paris is the capital of France.", "Paris is the capital of France."),
        (" Assistant: Hello there. How are you?", "Hello there. How are you?"),
        ("\n\n  parley:  Sure thing.", "Sure thing."),
        (" A dog is a loyal friend.", "A dog is a loyal friend."),
        (" AI is a broad field.", "AI is a broad field."),
    ],
)
def test_filter_strips_leading_blanks_and_speaker_label(raw: str, said: str) -> None:
    assert feed_all(raw)[0] == said


def test_filter_keeps_a_short_answer_held_as_a_possible_label() -> None:
    assert feed_all(" A")[0] == "A"
    assert feed_all("   ")[0] == ""


def test_filter_ends_the_reply_at_a_line_break() -> None:
    said, _ = feed_all(" Sure, here you go.\n\nUser: and then\nAssistant: more")
    assert said == "Sure, here you go."


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
    # Only the first delta can be held (it might have been a speaker label).
    assert all(emitted[1:-1])
