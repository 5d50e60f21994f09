"""Text to passages that a small embedding model reads whole.

all-MiniLM-L6-v2 reads at most 256 word pieces and was tuned on shorter texts, so passages are
sentences packed up to ``max_words`` words (about 1.3 pieces a word in English prose), a
paragraph break ending a passage once it is half full. Consecutive passages share their
boundary sentence when it is short, so a fact split across the boundary is whole in one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_WORDS", "DEFAULT_OVERLAP_WORDS", "Chunk", "chunk_text"]

DEFAULT_MAX_WORDS = 120
DEFAULT_OVERLAP_WORDS = 30

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a document, ``ordinal`` from 0 in document order."""

    ordinal: int
    text: str


def chunk_text(
    text: str, *, max_words: int = DEFAULT_MAX_WORDS, overlap_words: int = DEFAULT_OVERLAP_WORDS
) -> list[Chunk]:
    """Cut ``text`` into passages of at most ``max_words`` words, in order."""
    if max_words < 1 or not 0 <= overlap_words < max_words:
        raise ValueError("max_words must be positive and overlap_words below it")
    passages: list[list[str]] = []
    current: list[str] = []
    size = 0
    for sentence, ends_paragraph in _sentences(text, max_words):
        words = len(sentence.split())
        if current and size + words > max_words:
            passages.append(current)
            current, size = _carried(current, overlap_words, max_words - words)
        current.append(sentence)
        size += words
        if ends_paragraph and size >= max_words // 2:
            passages.append(current)
            current, size = [], 0
    if current:
        passages.append(current)
    return [Chunk(i, " ".join(p)) for i, p in enumerate(passages)]


def _carried(previous: list[str], overlap_words: int, room: int) -> tuple[list[str], int]:
    """The previous passage's last sentence, when it is short enough to repeat."""
    last = previous[-1]
    words = len(last.split())
    if len(previous) > 1 and words <= min(overlap_words, room):
        return [last], words
    return [], 0


def _sentences(text: str, max_words: int) -> Iterator[tuple[str, bool]]:
    """Each sentence (a longer one cut into pieces of ``max_words``) and whether it ends its
    paragraph."""
    for paragraph in _PARAGRAPHS.split(text):
        pieces = [
            piece
            for sentence in _SENTENCE_END.split(" ".join(paragraph.split()))
            if sentence
            for piece in _cut(sentence, max_words)
        ]
        for i, piece in enumerate(pieces):
            yield piece, i == len(pieces) - 1


def _cut(sentence: str, max_words: int) -> Iterator[str]:
    words = sentence.split()
    for start in range(0, len(words), max_words):
        yield " ".join(words[start : start + max_words])
