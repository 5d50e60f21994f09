"""Cut a streamed LLM reply into pieces worth sending to the synthesiser one at a time.

Synthesis works a piece at a time, so audio can only start once the first piece is complete:
the splitter's job is to recognise a finished sentence the moment its last character arrives,
without cutting where a sentence does not end ("Dr. Smith", "3.14", "e.g. this", "1. a list
item", "wait... what"). When in doubt it does not cut: a missed boundary only makes one piece
longer, a wrong one breaks the intonation mid-sentence. The first piece alone may end at a
clause ("I checked the calendar for you," / "and Monday is free."), because nothing is heard
until it is synthesised, while later pieces are synthesised as earlier ones play.

Every decision is taken when the character that settles it arrives and never revisited, so the
pieces are the same whether the reply comes in whole or one character at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FIRST_CLAUSE_MIN_CHARS", "FIRST_CLAUSE_MIN_WORDS", "Sentence", "SentenceSplitter"]

# A first piece cut at a clause is at least this long: about 1.5 s of speech, time enough for
# the rest of the sentence to be written and synthesised while it plays; "Sure," or "Well, I"
# alone would leave a gap after them.
FIRST_CLAUSE_MIN_CHARS = 25
FIRST_CLAUSE_MIN_WORDS = 4

_TERMINATORS = ".!?"
# Marks that end a clause when whitespace follows them ("1,000" and "10:30" have none).
_CLAUSE_MARKS = ",;:—–"
_EM_DASH = "—"  # ends a clause even unspaced ("easy—just"); an unspaced en dash is a range
# Conjunctions open a clause when the word after them is one of _CLAUSE_OPENERS: "free on
# Monday but the clinic closes early" is cut before "but", while "bread and butter", "two and
# a half", "and so on" and "so much" are not.
_CONJUNCTIONS = frozenset(
    {"and", "but", "so", "yet", "because", "although", "though", "while", "whereas", "unless"}
)
_CLAUSE_OPENERS = frozenset(
    {
        *("i", "you", "he", "she", "it", "we", "they", "there", "this", "that", "the", "then"),
        *("i'm", "i'll", "i'd", "i've", "you're", "you'll", "you'd", "you've", "it's"),
        *("he's", "she's", "we're", "we'll", "we've", "they're", "they'll", "that's"),
        *("there's", "let's", "if", "when"),
    }
)
# Characters that may close a sentence after its terminator: 'He said "no." Then' ends at '"'.
_CLOSERS = "\"'”’)]»*"
_OPENERS = "\"'“‘([«*¿¡"

# Tokens whose trailing period is almost never the end of a sentence in conversational text.
# Some ("etc", "inc", "st") do end sentences now and then; keeping the sentence whole then costs
# only a slightly later start of its audio.
_ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "rev", "hon"),
        *("gen", "col", "capt", "lt", "sgt", "gov", "sen", "rep", "pres"),
        *("vs", "etc", "eg", "ie", "cf", "al", "approx", "ca", "viz"),
        *("inc", "ltd", "co", "corp", "dept", "univ", "ave", "blvd", "rd"),
        *("fig", "vol", "ch", "pp", "ed", "op", "no"),
    }
)
# "U.S", "e.g", "a.m", "i.e": initialisms written with periods.
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A piece of the reply to synthesise; ``reply[start:end] == text``."""

    text: str
    start: int  # offset of the first character in the whole reply (all deltas joined)
    end: int  # exclusive


class SentenceSplitter:
    """Turns the text deltas of one LLM reply into sentences as soon as each is complete.

    Use one splitter per reply: ``feed`` every delta, then ``flush`` once at the end.
    """

    def __init__(
        self, *, max_chars: int = 200, first_clause_chars: int = FIRST_CLAUSE_MIN_CHARS
    ) -> None:
        """``max_chars``: a run without a sentence end is cut at a clause boundary (else a
        space) once it is this long. ``first_clause_chars``: the reply's first piece is cut
        at the first clause boundary after at least this many characters (and
        ``FIRST_CLAUSE_MIN_WORDS`` words); setting it to ``max_chars`` turns that off."""
        if not 0 < first_clause_chars <= max_chars:
            raise ValueError("need 0 < first_clause_chars <= max_chars")
        self._max_chars = max_chars
        self._first_clause_chars = first_clause_chars
        self._pending = ""  # text not yet emitted; never starts with whitespace
        self._start = 0  # offset of _pending in the reply
        self._clause_cuts: list[int] = []  # in _pending: where a piece may end at a clause
        self._last_space: int | None = None  # in _pending: the latest whitespace
        # In _pending: the whitespace before a conjunction whose next word is still coming.
        self._conjunction: int | None = None
        self._emitted_any = False

    def feed(self, delta: str) -> list[Sentence]:
        """Add the next fragment of the reply; return the sentences it completed, in order."""
        out: list[Sentence] = []
        for ch in delta:
            if not self._pending and ch.isspace():
                self._start += 1
                continue
            self._pending += ch
            cut = self._cut_after_append()
            if cut is not None:
                out.append(self._emit(cut))
        return out

    def flush(self) -> Sentence | None:
        """The end of the reply: return what is left as a last sentence, if anything."""
        if not self._pending:
            return None
        return self._emit(len(self._pending))

    def _cut_after_append(self) -> int | None:
        """Where to cut ``_pending`` now that its last character arrived, if anywhere."""
        text = self._pending
        n = len(text)
        ch = text[-1]
        if ch == "\n":
            return n - 1
        first_cut = None  # where the first piece may end, now that this character came
        if _clause_ends_before(text, n - 1):
            self._clause_cuts.append(n - 1)
            first_cut = n - 1
        if ch.isspace():
            if self._sentence_ends_before(n - 1):
                return n - 1
            before_conjunction = self._conjunction_cut(n - 1)
            if first_cut is None:
                first_cut = before_conjunction
            self._last_space = n - 1
        if first_cut is not None and self._first_piece_ends_at(first_cut):
            return first_cut
        if n >= self._max_chars:
            if self._clause_cuts:
                return self._clause_cuts[-1]
            # No clause boundary in a whole max_chars: a word boundary still beats waiting.
            return self._last_space if self._last_space is not None else n
        return None

    def _conjunction_cut(self, space: int) -> int | None:
        """A word just ended at ``space``: the cut before the conjunction it follows, if it
        starts a clause ("… on Monday | but the clinic …")."""
        if self._emitted_any:
            return None  # only the first piece is cut at a conjunction
        start = 0 if self._last_space is None else self._last_space + 1
        word = _word(self._pending[start:space])
        cut, self._conjunction = self._conjunction, None
        if word in _CONJUNCTIONS and start > 0:
            before = self._pending[:start].split()
            # "… and so I …": cutting before "so" would leave a piece ending in "and".
            if before and _word(before[-1]) not in _CONJUNCTIONS:
                self._conjunction = start - 1
        return cut if word in _CLAUSE_OPENERS else None

    def _first_piece_ends_at(self, cut: int) -> bool:
        # Once the reply's first piece is long enough, its first clause boundary ends it.
        if self._emitted_any:
            return False
        piece = self._pending[:cut]
        return (
            len(piece.rstrip()) >= self._first_clause_chars
            and len(piece.split()) >= FIRST_CLAUSE_MIN_WORDS
        )

    def _sentence_ends_before(self, space: int) -> bool:
        """Whether ``_pending[:space]``, followed by whitespace, is a finished sentence."""
        text = self._pending
        end = space
        while end > 0 and text[end - 1] in _CLOSERS:
            end -= 1
        run_start = end
        while run_start > 0 and text[run_start - 1] in _TERMINATORS:
            run_start -= 1
        run = text[run_start:end]
        if not run:
            return False
        if "!" in run or "?" in run:
            return True
        if len(run) > 1:  # an ellipsis: a pause, more often inside a sentence than at its end
            return False
        word_start = run_start
        while word_start > 0 and not text[word_start - 1].isspace():
            word_start -= 1
        word = text[word_start:run_start].lstrip(_OPENERS).rstrip(_CLOSERS)
        if word.lower() in _ABBREVIATIONS or _DOTTED.fullmatch(word):
            return False
        if len(word) == 1 and word.isupper() and word != "I":  # an initial: "John F. Kennedy"
            return False
        # "1. Preheat the oven": a list marker at the start of a line, not a sentence.
        return not (word_start == 0 and word.isdigit())

    def _emit(self, cut: int) -> Sentence:
        text = self._pending[:cut].rstrip()
        sentence = Sentence(text=text, start=self._start, end=self._start + len(text))
        rest = self._pending[cut:]
        stripped = rest.lstrip()
        self._start += cut + len(rest) - len(stripped)
        self._pending = stripped
        self._emitted_any = True
        self._rescan()
        return sentence

    def _rescan(self) -> None:
        # What is left after a cut was seen already, but its positions have moved.
        text = self._pending
        self._clause_cuts = [i for i in range(1, len(text)) if _clause_ends_before(text, i)]
        spaces = [i for i, ch in enumerate(text) if ch.isspace()]
        self._last_space = spaces[-1] if spaces else None
        self._conjunction = None  # conjunctions matter in the first piece only


def _clause_ends_before(text: str, i: int) -> bool:
    """Whether a clause ends just before ``text[i]``, the latest character seen: after ", "
    and the like, a spaced hyphen ("easy - just") or an em dash ("easy—just")."""
    if i < 1:
        return False
    before, ch = text[i - 1], text[i]
    if ch.isspace():
        return before in _CLAUSE_MARKS or (before == "-" and i >= 2 and text[i - 2].isspace())
    return before == _EM_DASH


def _word(token: str) -> str:
    """``token`` as a word to look up: lower case, typographic apostrophes made plain."""
    return token.lower().replace("’", "'")
