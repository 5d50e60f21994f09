"""The streaming sentence splitter: boundaries, timing of emission, spans, long runs."""

from __future__ import annotations

import itertools
import random

import pytest

from parley_tts.sentences import (
    FIRST_CLAUSE_MIN_CHARS,
    FIRST_CLAUSE_MIN_WORDS,
    Sentence,
    SentenceSplitter,
)


def split(reply: str, step: int = 1, **options: int) -> list[Sentence]:
    """Feed ``reply`` in ``step``-character deltas, then flush; check every span."""
    splitter = SentenceSplitter(**options)
    out: list[Sentence] = []
    for i in range(0, len(reply), step):
        out += splitter.feed(reply[i : i + step])
    last = splitter.flush()
    if last is not None:
        out.append(last)
    for sentence in out:
        assert reply[sentence.start : sentence.end] == sentence.text
    return out


def texts(reply: str, step: int = 1, **options: int) -> list[str]:
    return [s.text for s in split(reply, step, **options)]


def test_plain_sentences() -> None:
    reply = "Hello there! How are you today? I'm fine, thanks. Bye"
    assert texts(reply) == ["Hello there!", "How are you today?", "I'm fine, thanks.", "Bye"]


def test_a_sentence_is_emitted_by_the_delta_that_completes_it() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hi") == []
    # "Hi." might still become "Hi.5" or "Hi..." so it waits for the next character.
    assert splitter.feed(".") == []
    assert splitter.feed(" ") == [Sentence("Hi.", 0, 3)]
    assert splitter.feed("How are") == []
    assert splitter.feed(" you?\nGood") == [Sentence("How are you?", 4, 16)]
    assert splitter.flush() == Sentence("Good", 17, 21)
    assert splitter.flush() is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones and Prof. Lee. They talked.",
            ["Mr. Smith met Dr. Jones and Prof. Lee.", "They talked."],
        ),
        (
            "Okay. Bring fruit, e.g. apples, i.e. the red ones. Okay?",
            ["Okay.", "Bring fruit, e.g. apples, i.e. the red ones.", "Okay?"],
        ),
        (
            "We met at 5 p.m. in the U.S. embassy. Fine.",
            ["We met at 5 p.m. in the U.S. embassy.", "Fine."],
        ),
        (
            "It was John F. Kennedy. Neither do I. Yes.",
            ["It was John F. Kennedy.", "Neither do I.", "Yes."],
        ),
        ("Cats vs. dogs, etc. are fun. Right!", ["Cats vs. dogs, etc. are fun.", "Right!"]),
    ],
)
def test_abbreviations_do_not_end_sentences(reply: str, expected: list[str]) -> None:
    assert texts(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Pi is 3.14 and e is 2.718. Nice.", ["Pi is 3.14 and e is 2.718.", "Nice."]),
        ("It costs $1,299.99 in 2024. Then less.", ["It costs $1,299.99 in 2024.", "Then less."]),
        (
            "Version 1.2.3 is out. See example.com now.",
            ["Version 1.2.3 is out.", "See example.com now."],
        ),
    ],
)
def test_numbers_do_not_end_sentences(reply: str, expected: list[str]) -> None:
    assert texts(reply) == expected


def test_ellipsis_and_repeated_marks() -> None:
    reply = "Well... I think so. Really?! Wow!!! Hmm… okay."
    assert texts(reply) == ["Well... I think so.", "Really?!", "Wow!!!", "Hmm… okay."]


def test_closing_quotes_stay_with_their_sentence() -> None:
    reply = 'She said "stop." (It was late.) Then she left.'
    assert texts(reply) == ['She said "stop."', "(It was late.)", "Then she left."]


def test_newlines_and_numbered_lists() -> None:
    reply = "Steps:\n1. Mix the flour.\n2. Bake it\n\n- Serve warm\r\nEnjoy"
    assert texts(reply) == ["Steps:", "1. Mix the flour.", "2. Bake it", "- Serve warm", "Enjoy"]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 50, 10_000])
def test_same_pieces_whatever_the_delta_size(step: int) -> None:
    reply = (
        "Sure! Mr. Brown paid $3.50, e.g. for tea... and cake. Is that right?\n"
        "1. First, we walk along the river for a while, looking at the boats, the birds and "
        "the people; then we stop for lunch somewhere quiet. 2. Later we go home.\n"
        + "no punctuation at all in this part "
        * 8
    )
    assert split(reply, step) == split(reply, 1)


def test_random_deltas_keep_spans_exact() -> None:
    rng = random.Random(7)
    reply = "  Leading space. " + "A sentence, with a clause; and more. " * 30 + "  tail  "
    splitter = SentenceSplitter()
    out: list[Sentence] = []
    i = 0
    while i < len(reply):
        size = rng.randint(1, 12)
        out += splitter.feed(reply[i : i + size])
        i += size
    last = splitter.flush()
    assert last is not None
    out.append(last)
    assert out[0] == Sentence("Leading space.", 2, 16)
    assert out[-1].text == "tail"
    for sentence in out:
        assert reply[sentence.start : sentence.end] == sentence.text
    for before, after in itertools.pairwise(out):
        assert before.end < after.start
    # Nothing but whitespace is left out of the spans.
    assert "".join(s.text for s in out).replace(" ", "") == reply.replace(" ", "")


def test_long_first_sentence_is_cut_early_at_a_clause() -> None:
    first = (
        "I looked into the options you mentioned yesterday afternoon, and honestly the second "
        "one looks like the better choice for you."
    )
    second = (
        "It costs a little more up front, but the running costs over the years are much lower "
        "than the others."
    )
    assert texts(f"{first} {second}") == [
        "I looked into the options you mentioned yesterday afternoon,",
        "and honestly the second one looks like the better choice for you.",
        second,  # only the first piece of a reply is cut early
    ]


def test_the_first_clause_cut_comes_with_the_character_that_settles_it() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("I checked the calendar for you,") == []  # "you,000"?
    assert splitter.feed(" ") == [Sentence("I checked the calendar for you,", 0, 31)]
    assert splitter.feed("and Monday is free") == []
    assert splitter.flush() == Sentence("and Monday is free", 32, 50)


def test_short_first_sentence_is_not_cut_at_its_comma() -> None:
    assert texts("Sure, I can do that. Okay, done.") == ["Sure, I can do that.", "Okay, done."]


def test_first_piece_is_not_cut_after_a_short_clause() -> None:
    reply = "Well, I looked into the options you mentioned yesterday and they all look good."
    assert texts(reply) == [
        "Well, I looked into the options you mentioned yesterday",  # not "Well,"
        "and they all look good.",
    ]


def test_the_first_piece_ends_at_its_first_clause_long_enough() -> None:
    reply = "Okay, so I checked the calendar for you, and the dentist has a free slot on Monday."
    assert texts(reply) == [
        "Okay, so I checked the calendar for you,",
        "and the dentist has a free slot on Monday.",
    ]


@pytest.mark.parametrize(
    ("first", "cut"),
    [
        ("Yes, of course I can,", False),  # 5 words, but too short to cover what follows
        ("Absolutely wonderful news,", False),  # long enough, but 3 words
        ("I can book that for you,", False),  # 6 words, a character short
        ("I can book those for you,", True),  # the minimum
    ],
)
def test_a_first_clause_needs_enough_words_and_characters(first: str, cut: bool) -> None:
    rest = "and the confirmation will arrive by email in a minute."
    long_enough = len(first) >= FIRST_CLAUSE_MIN_CHARS
    assert cut == (long_enough and len(first.split()) >= FIRST_CLAUSE_MIN_WORDS)
    assert texts(f"{first} {rest}") == ([first, rest] if cut else [f"{first} {rest}"])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "The dentist has a free slot on Monday but the clinic closes early that day.",
            ["The dentist has a free slot on Monday", "but the clinic closes early that day."],
        ),
        (
            "It is going to rain all afternoon so you should take an umbrella with you.",
            ["It is going to rain all afternoon", "so you should take an umbrella with you."],
        ),
        (
            "The flight was cancelled this morning because there was a storm over the sea.",
            ["The flight was cancelled this morning", "because there was a storm over the sea."],
        ),
        (
            "Turn the oven down a little bit and then leave it for twenty minutes.",
            ["Turn the oven down a little bit", "and then leave it for twenty minutes."],
        ),
    ],
)
def test_first_piece_is_cut_before_a_conjunction_that_opens_a_clause(
    reply: str, expected: list[str]
) -> None:
    assert texts(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "You will need some fresh bread and butter for this recipe tonight.",  # two nouns
        "The recipe takes about two hours and a half in a slow oven.",
        "Thank you all very much indeed so much for asking me that.",  # not "so" the conjunction
        "I was really very tired after the trip and so I went to bed.",  # not after "and"
        "We went to the market on Sunday and bought apples.",  # no subject after "and"
    ],
)
def test_first_piece_is_not_cut_before_other_conjunctions(reply: str) -> None:
    assert texts(reply) == [reply]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "Boiling an egg is really easy — just put it in boiling water.",
            ["Boiling an egg is really easy —", "just put it in boiling water."],
        ),
        (
            "Boiling an egg is really easy—just put it in boiling water.",
            ["Boiling an egg is really easy—", "just put it in boiling water."],
        ),
        (
            "Boiling an egg is really easy - just put it in boiling water.",
            ["Boiling an egg is really easy -", "just put it in boiling water."],
        ),
        (
            "The museum covers the pre- and post-war years of the city, and more.",
            ["The museum covers the pre- and post-war years of the city,", "and more."],
        ),
        (
            "Boiling an egg is a well-known trick; it takes ten minutes.",
            ["Boiling an egg is a well-known trick;", "it takes ten minutes."],
        ),
        (
            "Read chapters three to five on pages 10–20 before class starts.",
            ["Read chapters three to five on pages 10–20 before class starts."],
        ),
    ],
)
def test_first_piece_is_cut_at_dashes_and_semicolons(reply: str, expected: list[str]) -> None:
    assert texts(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "The tower is about 1,000 feet tall, and it was built in 1889.",
            ["The tower is about 1,000 feet tall,", "and it was built in 1889."],
        ),
        (
            "The average here is about 3.5 degrees and it rarely snows at all.",
            ["The average here is about 3.5 degrees", "and it rarely snows at all."],
        ),
        (
            "The shop opens at 10:30 every day and it closes at six.",
            ["The shop opens at 10:30 every day", "and it closes at six."],
        ),
        (
            "Dr. Smith can see you on Monday, and Mr. Jones on Tuesday.",
            ["Dr. Smith can see you on Monday,", "and Mr. Jones on Tuesday."],
        ),
    ],
)
def test_first_clause_cut_keeps_numbers_and_abbreviations(reply: str, expected: list[str]) -> None:
    assert texts(reply) == expected


@pytest.mark.parametrize("step", [1, 2, 3, 5, 11, 1000])
def test_first_clause_cuts_are_the_same_whatever_the_delta_size(step: int) -> None:
    for reply in (
        "The dentist has a free slot on Monday but the clinic closes early. See you.",
        "Boiling an egg is really easy—just put it in water, and wait. Then eat it.",
    ):
        assert split(reply, step) == split(reply, 1)


def test_later_sentences_are_not_cut_at_clauses() -> None:
    reply = (
        "Sure. The dentist has a free slot on Monday, but the clinic closes early that day "
        "because the staff have a training course."
    )
    assert texts(reply) == ["Sure.", reply[len("Sure. ") :]]


def test_first_clause_cut_can_be_turned_down() -> None:
    reply = "I looked into the options you mentioned yesterday afternoon, and it is fine."
    assert texts(reply, first_clause_chars=200) == [reply]


def test_long_run_is_cut_at_the_last_clause_boundary() -> None:
    rng = random.Random(3)
    clauses = [" ".join(["la" * rng.randint(1, 4)] * rng.randint(2, 9)) for _ in range(60)]
    reply = "Intro. " + ", ".join(clauses)
    out = texts(reply)
    assert out[0] == "Intro."
    assert len(out) > 5
    for piece in out[1:-1]:
        assert len(piece) <= 200
        assert piece.endswith(",")
        assert len(piece) > 120  # the last boundary before the limit, not the first


def test_long_run_without_clauses_is_cut_between_words() -> None:
    out = texts("speech " * 70)
    assert [len(piece) for piece in out] == [195, 195, 97]
    assert set(" ".join(out).split(" ")) == {"speech"}


def test_cuts_after_an_early_clause_use_positions_in_the_remaining_text() -> None:
    out = texts("Well, " + "speech " * 70)
    assert [len(piece) for piece in out] == [5, 195, 195, 97]


def test_run_without_any_space_is_cut_hard() -> None:
    assert [len(piece) for piece in texts("x" * 450)] == [200, 200, 50]


def test_flush_returns_an_unterminated_remainder() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Done.") == []
    assert splitter.flush() == Sentence("Done.", 0, 5)


def test_whitespace_only_reply_gives_nothing() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("  \n \n ") == []
    assert splitter.flush() is None


def test_rejects_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="first_clause_chars"):
        SentenceSplitter(max_chars=50, first_clause_chars=60)
