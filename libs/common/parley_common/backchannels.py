"""Backchannels: the short sounds and words a listener makes to say "go on" ("mm-hmm",
"yeah", "okay"), per language, and whether an overlap's transcript is nothing but those.

When the user speaks over the assistant, the gateway pauses and reads the overlap's
transcript: only backchannels (or nothing, a cough) and it resumes; any other word is an
interruption. The lists are keyed by the nine supported languages; a deployment can add
phrases with ``PARLEY_BACKCHANNELS_<LANG>`` (comma separated, e.g. ``PARLEY_BACKCHANNELS_EN=
"gotcha, cool"``). A speech recogniser spells non-words in many ways (Whisper writes
"mm-hmm" as "Mm-hmm", "Mhm", "M M M"), so phrases are compared as lower-case word sequences
without punctuation, and runs of one repeated phrase ("yeah, yeah") count too; a hum
spelled letter by letter ("M.M.H.N.", "P-E-E-T") is one as well.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from parley_common.languages import SUPPORTED_LANGUAGES, supported_language

__all__ = [
    "BACKCHANNELS",
    "QUESTION_WORDS",
    "STOP_WORDS",
    "RecentOverlaps",
    "backchannel_phrases",
    "has_question_word",
    "has_stop_word",
    "is_backchannel",
    "words",
]

ENV_PREFIX = "PARLEY_BACKCHANNELS_"
# A word of nothing but hum letters with an "m" in it: "mmhm", "mhmm", "hmmm", "mmh".
_HUMMED = re.compile(r"[mhn]*m[mhn]*")
T = TypeVar("T")

# Sounds any language's speakers make (and recognisers write) while listening; a breath or
# a cough transcribed as one of these is no interruption either.
_VOCAL = (
    "mm",
    "mmm",
    "m",
    "m m",
    "m m m",
    "m h m",
    "h",  # Whisper spells a hum letter by letter: "M.H.M.H.M."
    "mhm",
    "mm hmm",
    "mm hm",
    "m hm",
    "hmm",
    "hm",
    "uh huh",
    "uh hu",
    "uhuh",
    "uh",
    "um",
    "ah",
    "aha",
    "oh",
    "ooh",
    "ow",
    "eh",
)

BACKCHANNELS: dict[str, tuple[str, ...]] = {
    "en": (
        "yeah",
        "yes",
        "yep",
        "yup",
        "ya",
        "okay",
        "ok",
        "o k",
        "right",
        "alright",
        "all right",
        "sure",
        "i see",
        "got it",
        "uh huh",
        "true",
        "exactly",
        "cool",
        "nice",
        "wow",
        "really",
    ),
    "es": ("sí", "si", "vale", "claro", "ajá", "aja", "ya", "bueno", "vale vale", "exacto"),
    "fr": ("oui", "ouais", "d'accord", "ok", "okay", "voilà", "ah bon", "bien sûr", "exactement"),
    "de": ("ja", "jaja", "genau", "okay", "ok", "stimmt", "klar", "aha", "richtig", "na ja"),
    "it": ("sì", "si", "certo", "esatto", "va bene", "ok", "okay", "già", "capito", "ah ecco"),
    "pt": ("sim", "é", "pois", "pois é", "certo", "tá", "ok", "okay", "claro", "entendi"),
    "ja": ("はい", "うん", "ええ", "そう", "そうですね", "なるほど", "へえ", "ふーん", "ああ"),
    "ko": ("네", "예", "응", "그래", "맞아", "아", "그렇구나", "음"),
    "zh": ("嗯", "对", "是", "好", "好的", "是的", "对对", "哦", "嗯嗯", "明白"),
}

# Words that take the turn however unsure the recogniser is of them: a clipped "stop" or
# "wait" said over the assistant is the commonest real interruption, and missing one is
# worse than pausing for nothing.
STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("stop", "wait", "no", "hold", "hang", "sorry", "excuse", "pause", "actually"),
    "es": ("para", "espera", "no", "perdón", "oye", "momento"),
    "fr": ("arrête", "attends", "non", "pardon", "stop", "attendez"),
    "de": ("stopp", "halt", "warte", "nein", "moment", "entschuldigung"),
    "it": ("basta", "aspetta", "no", "scusa", "ferma", "stop"),
    "pt": ("para", "espera", "não", "desculpa", "pera"),
    "ja": ("待って", "ちょっと", "いいえ", "すみません", "ストップ"),
    "ko": ("잠깐", "아니", "아니요", "멈춰", "그만"),
    "zh": ("等等", "停", "不", "不是", "等一下"),
}

# One-word questions and calls that take the floor ("What?", "Hello?"). Unlike a stop word
# they count only when the recogniser is sure enough of them, but then even in a short
# overlap, where other words need more (see the gateway's ``overlap.py``): Whisper gives a
# plainly spoken "What?" 0.3-0.7, no more than the words it invents for a hum.
QUESTION_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("what", "why", "how", "when", "where", "who", "which", "hello", "hey"),
    "es": ("qué", "cómo", "cuándo", "dónde", "quién", "hola", "oiga"),
    "fr": ("quoi", "pourquoi", "comment", "quand", "où", "qui", "allô", "hein"),
    "de": ("was", "warum", "wie", "wann", "wo", "wer", "hallo", "hä"),
    "it": ("cosa", "perché", "come", "quando", "dove", "chi", "pronto", "ehi"),
    "pt": ("quê", "porquê", "como", "quando", "onde", "quem", "olá", "oi"),
    "ja": ("何", "なに", "なんで", "どう", "いつ", "どこ", "誰", "もしもし"),
    "ko": ("뭐", "왜", "어떻게", "언제", "어디", "누구", "여보세요"),
    "zh": ("什么", "为什么", "怎么", "什么时候", "哪里", "谁", "喂"),
}

_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    """``text`` as lower-case words without punctuation ("Mm-hmm." → ["mm", "hmm"])."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower().replace("-", " "))


def backchannel_phrases(language: str | None) -> frozenset[str]:
    """The backchannel phrases of ``language`` (a language tag; None or unsupported: every
    language's, since the recogniser may not say), as space-joined words."""
    code = supported_language(language)
    codes = [code] if code is not None else list(SUPPORTED_LANGUAGES)
    phrases = set(_VOCAL)
    for c in codes:
        phrases.update(BACKCHANNELS[c])
        extra = os.environ.get(ENV_PREFIX + c.upper(), "")
        phrases.update(p for p in extra.split(",") if p.strip())
    return frozenset(" ".join(words(p)) for p in phrases if words(p))


def _has_word_of(lists: dict[str, tuple[str, ...]], text: str, language: str | None) -> bool:
    code = supported_language(language)
    codes = [code] if code is not None else list(SUPPORTED_LANGUAGES)
    listed = {w for c in codes for w in lists[c]}
    tokens = words(text)
    # Japanese and Chinese put no spaces between words: those are found inside the text.
    return any(t in listed for t in tokens) or any(w in text for w in listed if _unspaced(w))


def _unspaced(word: str) -> bool:
    return all(ord(ch) >= 0x3000 for ch in word)  # CJK, kana, hangul


def has_stop_word(text: str, language: str | None) -> bool:
    """Whether ``text`` holds a word that always interrupts (see ``STOP_WORDS``)."""
    return _has_word_of(STOP_WORDS, text, language)


def has_question_word(text: str, language: str | None) -> bool:
    """Whether ``text`` holds a one-word question or call (see ``QUESTION_WORDS``)."""
    return _has_word_of(QUESTION_WORDS, text, language)


def _spelled(tokens: list[str]) -> bool:
    # Whisper writes a hum it cannot place as letters ("M.M.H.N.", "M-E-M-I-M", "P-c-c-c");
    # nobody interrupts by spelling, and "i" or "a" alone take no turn either.
    return all(len(t) == 1 and t.isascii() and t.isalpha() for t in tokens)


def is_backchannel(text: str, language: str | None) -> bool:
    """Whether ``text`` holds only backchannel phrases (at least one word). Scripts written
    without spaces (Japanese, Chinese) are matched on the whole text."""
    tokens = words(text)
    if not tokens:
        return False
    if _spelled(tokens):
        return True
    phrases = backchannel_phrases(language)
    longest = max((len(p.split()) for p in phrases), default=1)
    # Greedy from the left, longest phrase first: "all right yeah" = "all right" + "yeah".
    i = 0
    while i < len(tokens):
        if _HUMMED.fullmatch(tokens[i]):  # a hum however spelled: "Mmhm", "MMH", "hmmm"
            i += 1
            continue
        for n in range(min(longest, len(tokens) - i), 0, -1):
            if " ".join(tokens[i : i + n]) in phrases:
                i += n
                break
        else:
            return False
    return True


class RecentOverlaps(Generic[T]):
    """The dialogue worker's side of an overlap the gateway judges: while it judges
    (``judging``, from its pause until its verdict), transcripts are parked rather than
    answered; a dismissal drops the one that said the dismissed words (and remembers them a
    while, for a final still to come), an interruption verdict releases them. A verdict that
    never comes releases them after ``hold_s``."""

    def __init__(self, keep_s: float = 6.0, hold_s: float = 3.0) -> None:
        self.keep_s = keep_s
        self.hold_s = hold_s
        self._texts: deque[tuple[float, tuple[str, ...]]] = deque()
        self._parked: list[tuple[T, tuple[str, ...]]] = []
        self._release: Callable[[T], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def judging(self, release: Callable[[T], None]) -> None:
        """The gateway paused the assistant for speech over it; parked items go to
        ``release`` when they are to be answered after all."""
        self._release = release
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.hold_s, self.released)

    def hold(self, item: T, text: str) -> bool:
        """Park ``item`` (a transcript saying ``text``) if an overlap is being judged."""
        if self._release is None:
            return False
        self._parked.append((item, tuple(words(text))))
        return True

    def dismissed(self, text: str) -> bool:
        """The overlap said ``text`` (may be empty) and was a backchannel or noise: its
        parked transcript is dropped, others are released. True if one was dropped."""
        key = tuple(words(text))
        kept = [(item, said) for item, said in self._parked if said != key]
        dropped = len(kept) < len(self._parked)
        self._parked = kept
        if key:  # its final may be still to come (a speculative transcript was parked)
            self._expire()
            self._texts.append((time.monotonic() + self.keep_s, key))
        self.released()
        return dropped

    def released(self) -> None:
        """The verdict was an interruption (or never came): answer what was parked."""
        release, parked = self._release, self._parked
        self._release, self._parked = None, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if release is not None:
            for item, _ in parked:
                release(item)

    def take(self, text: str) -> bool:
        """Whether ``text`` is a dismissed overlap's final, arriving after its verdict
        (forgotten once taken)."""
        self._expire()
        key = tuple(words(text))
        for entry in self._texts:
            if entry[1] == key:
                self._texts.remove(entry)
                return True
        return False

    def _expire(self) -> None:
        now = time.monotonic()
        while self._texts and self._texts[0][0] < now:
            self._texts.popleft()
