"""What the assistant says when the user has gone quiet after its turn (the session's
``idle_prompt_s``): a fixed question in the user's language, no model call."""

from __future__ import annotations

from parley_common.languages import supported_language

__all__ = ["still_there"]

_STILL_THERE = {
    "en": "Are you still there?",
    "es": "¿Sigues ahí?",
    "fr": "Vous êtes toujours là ?",
    "de": "Sind Sie noch da?",
    "it": "Ci sei ancora?",
    "pt": "Você ainda está aí?",
    "ja": "まだいらっしゃいますか？",
    "ko": "아직 계신가요?",
    "zh": "您还在吗？",
}


def still_there(language: str | None) -> str:
    """The question "are you still there?" in ``language`` (a tag such as ``"pt-BR"``);
    English when it is None or not one of the nine."""
    return _STILL_THERE.get(supported_language(language) or "en", _STILL_THERE["en"])
