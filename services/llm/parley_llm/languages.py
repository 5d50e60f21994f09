"""What the dialogue model is told about the language to answer in.

The user's language is the one the STT heard in their latest spoken turn (a typed turn keeps
the one before). The instruction goes at the end of the system prompt, so that a session's own
prompt, written in whatever language, does not decide the answer's language.
"""

from __future__ import annotations

from parley_common.languages import LANGUAGE_NAMES, supported_language

__all__ = ["answer_in"]

# When the STT did not say (a provider that does not report it, or detection not yet run).
_UNKNOWN = "Answer in the language the user speaks."


def answer_in(language: str | None) -> str:
    """The system prompt's sentence asking for answers in ``language`` (a tag such as
    ``"es"`` or ``"es-MX"``; None or an unsupported one: the user's own, unnamed)."""
    code = supported_language(language)
    if code is None:
        return _UNKNOWN
    name = LANGUAGE_NAMES[code]
    return f"The user is speaking {name}: answer in {name}."
