"""Reading the answers of OpenAI's transcription protocol (OpenAI itself, Groq, any compatible
server) into :class:`SttResult`: words with timings, a confidence, the detected language."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from parley_common.contracts.bus import Word
from parley_stt.providers.base import SttResult
from parley_stt.providers.whisper_languages import language_code

__all__ = ["MalformedReply", "from_logprobs", "from_verbose"]


class MalformedReply(ValueError):
    """A reply that does not have the shape the protocol documents."""


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Word(_Reply):
    word: str
    start: float
    end: float


class _Segment(_Reply):
    start: float = 0.0
    end: float = 0.0
    tokens: list[int] | None = None
    avg_logprob: float | None = None


class _Verbose(_Reply):
    text: str
    language: str | None = None
    words: list[_Word] | None = None
    segments: list[_Segment] | None = None


def from_verbose(reply: Mapping[str, Any], asked_language: str | None) -> SttResult:
    """A ``verbose_json`` reply: word timings, language from the reply, and a confidence
    from the segments' ``avg_logprob`` (the geometric mean token probability, weighted by
    each segment's tokens, or its duration when tokens are absent)."""
    try:
        verbose = _Verbose.model_validate(reply)
    except ValidationError as exc:
        raise MalformedReply("verbose_json reply of an unexpected shape") from exc
    text = verbose.text.strip()
    words = tuple(
        Word(word=w.word.strip(), start=w.start, end=w.end)
        for w in verbose.words or ()
        if w.word.strip()
    )
    return SttResult(
        text=text,
        is_final=True,
        confidence=_segments_confidence(verbose.segments or ()) if text else None,
        language=language_code(verbose.language) or asked_language,
        words=words,
    )


def from_logprobs(
    text: str, logprobs: Iterable[float | None] | None, asked_language: str | None
) -> SttResult:
    """A ``json`` reply (or a streamed ``transcript.text.done``): the confidence is the
    geometric mean of the token probabilities when the model returned them."""
    values = [p for p in logprobs or () if p is not None]
    confidence = _probability(sum(values) / len(values)) if values and text.strip() else None
    return SttResult(
        text=text.strip(), is_final=True, confidence=confidence, language=asked_language
    )


def _segments_confidence(segments: Iterable[_Segment]) -> float | None:
    total = weight = 0.0
    for segment in segments:
        if segment.avg_logprob is None:
            continue
        share = float(len(segment.tokens)) if segment.tokens else segment.end - segment.start
        share = max(share, 1e-3)
        total += segment.avg_logprob * share
        weight += share
    return _probability(total / weight) if weight else None


def _probability(mean_logprob: float) -> float:
    return min(1.0, max(0.0, math.exp(mean_logprob)))
