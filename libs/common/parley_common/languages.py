"""The languages Parley holds conversations in, and how a language tag is read.

A session's ``language`` is a BCP 47 tag (``"es"``, ``"es-MX"``, ``"pt_BR"``) or None (the STT
detects it, turn by turn). Only the primary subtag decides support: the nine below are the ones
every stage handles (Whisper recognises them, the dialogue prompt names them, each TTS provider
has a voice table for them or says clearly that it has none).
"""

from __future__ import annotations

import re

__all__ = [
    "LANGUAGE_NAMES",
    "LANGUAGE_TAG_PATTERN",
    "SUPPORTED_LANGUAGES",
    "UnsupportedLanguageError",
    "check_language",
    "primary_language",
    "supported_language",
]

# English names: the dialogue prompt is written in English, whatever the user speaks.
LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
}
SUPPORTED_LANGUAGES = tuple(LANGUAGE_NAMES)
# What the API accepts, as a JSON-schema pattern (ECMA regex: no inline flags, hence the
# character classes): a supported primary subtag in any case, then optional subtags.
LANGUAGE_TAG_PATTERN = (
    "^(?:"
    + "|".join("".join(f"[{c.upper()}{c}]" for c in code) for code in SUPPORTED_LANGUAGES)
    + ")(?:[-_][A-Za-z0-9]{1,8})*$"
)
_TAG = re.compile(LANGUAGE_TAG_PATTERN)


class UnsupportedLanguageError(ValueError):
    """A language tag outside the nine (a ValueError, so pydantic reports it as a 422)."""


def primary_language(tag: str) -> str:
    """The primary subtag, lower case: ``"pt_BR"`` → ``"pt"``, ``"zh-Hans-CN"`` → ``"zh"``."""
    return tag.replace("_", "-").split("-")[0].lower()


def supported_language(tag: str | None) -> str | None:
    """The supported language ``tag`` names (its primary subtag), or None when it names none
    of the nine or is None (unknown, e.g. not reported by the STT)."""
    if tag is None or _TAG.match(tag) is None:
        return None
    return primary_language(tag)


def check_language(tag: str | None) -> str | None:
    """``tag`` unchanged when it names a supported language or is None (detect).

    Raises:
        UnsupportedLanguageError: any other tag; the message lists the supported ones.
    """
    if tag is not None and supported_language(tag) is None:
        raise UnsupportedLanguageError(
            f"language '{tag}' is not supported; use one of {', '.join(SUPPORTED_LANGUAGES)} "
            "(a region such as es-MX is accepted) or null to detect it"
        )
    return tag
