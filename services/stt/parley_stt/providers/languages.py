"""What each live STT provider can do with a session's language, and the stream that says so
when it cannot.

- Local Whisper, OpenAI and Groq (Whisper models): every supported language, and detection
  (``language`` omitted; ``whisper-1`` and Groq report what they heard, ``gpt-4o-*`` do not,
  so their turns carry no language and the dialogue asks for the user's own). The local
  Whisper keeps to the nine: a detection outside them decodes the likeliest of the nine.
- Deepgram: detection only with the models that take ``language=multi`` (nova-3, nova-2);
  any other model would hear English whatever is spoken.
- AssemblyAI: its multilingual streaming model (with detection) knows English, Spanish,
  French, German, Italian and Portuguese; Japanese, Korean and Chinese it does not stream.

A session that asks for what its provider cannot do gets a ``RefusedStream``: its ``finish``
raises the reason, as any provider failure, so the session reports it or lets a fallback (the
local Whisper, say) take the turn.
"""

from __future__ import annotations

from collections.abc import Iterable

from parley_common.errors import ParleyError, ProviderUnavailableError
from parley_common.languages import LANGUAGE_NAMES, supported_language
from parley_stt.providers.base import SttResult

__all__ = [
    "ASSEMBLYAI_LANGUAGES",
    "RefusedStream",
    "detection_refused",
    "language_refused",
    "likeliest_supported",
]

ASSEMBLYAI_LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt"})


def detection_refused(provider: str, model: str, how: str) -> ProviderUnavailableError:
    """``provider``'s ``model`` cannot detect the language; ``how`` says what can."""
    return ProviderUnavailableError(
        f"the {provider} model {model} cannot detect the language: {how}, or set the "
        "session's language",
        code="language_detection_unsupported",
        provider=provider,
    )


def language_refused(provider: str, language: str, how: str) -> ProviderUnavailableError:
    """``provider`` does not recognise ``language``; ``how`` says what does."""
    code = supported_language(language)
    name = LANGUAGE_NAMES[code] if code else language
    return ProviderUnavailableError(
        f"{provider} does not recognise {name} speech: {how}",
        code="language_unsupported",
        provider=provider,
    )


class RefusedStream:
    """An utterance its provider was never asked to recognise: nothing is sent anywhere, and
    ``finish`` raises why (``interim`` has nothing)."""

    def __init__(self, error: ParleyError) -> None:
        self._error = error

    async def feed(self, pcm: bytes) -> None:
        """Drop the audio: no provider connection exists."""

    async def interim(self) -> SttResult | None:
        """No partials."""
        return None

    async def finish(self) -> SttResult:
        """Raise the refusal."""
        raise self._error

    async def aclose(self) -> None:
        """Nothing to release."""


def likeliest_supported(probabilities: Iterable[tuple[str, float]] | None) -> str | None:
    """The most probable of the nine in a detector's ``(language, probability)`` pairs (None
    when it gave none of them)."""
    ranked = [(p, code) for code, p in probabilities or () if supported_language(code)]
    return max(ranked)[1] if ranked else None
