"""Valence of a transcript: VADER's sentiment lexicon (MIT), plus a few phrases of
frustration that a sentiment lexicon scores as neutral ("it still doesn't work")."""

from __future__ import annotations

import functools
import re
from typing import Protocol, cast

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

# Spoken complaints that carry no negative word; each found lowers the valence by this.
FRUSTRATION_WEIGHT = 0.4
_FRUSTRATION = re.compile(
    r"\b("
    r"(does|do|did|is|are|was)\s*(n[o']t|not)\s+(work|working|help|helping|listen|listening)"
    r"|not\s+(work|working)|never\s+works?|keeps?\s+(failing|crashing|breaking)"
    r"|(again|still)\s+(not|nothing|broken|wrong)|fed\s+up|sick\s+of|tired\s+of"
    r"|how\s+many\s+times|for\s+the\s+(third|fourth|fifth|tenth|last)\s+time"
    r"|(tried|asked|said)\s+(it\s+|that\s+)?(twice|three\s+times|again|already)"
    r"|waste\s+of\s+time|what\s+is\s+wrong\s+with|come\s+on|seriously"
    r")\b",
    re.IGNORECASE,
)


class _Analyzer(Protocol):
    def polarity_scores(self, text: str) -> dict[str, float]: ...


@functools.cache
def _analyzer() -> _Analyzer:
    # Built once, when first needed: it reads its lexicon from the package (~10 ms).
    return cast(_Analyzer, SentimentIntensityAnalyzer())


def frustration_cues(text: str) -> int:
    """How many phrases of frustration ``text`` contains."""
    return len(_FRUSTRATION.findall(text))


def valence(text: str) -> float:
    """From -1 (negative) to 1 (positive): VADER's compound score, lowered by each phrase of
    frustration."""
    compound = float(_analyzer().polarity_scores(text)["compound"])
    cues = frustration_cues(text)
    if cues:
        compound = min(compound, 0.0) - FRUSTRATION_WEIGHT * cues
    return max(-1.0, min(1.0, compound))
