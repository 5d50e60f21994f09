"""The nine supported languages: which tags name one, and the session's 422 for the others."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from parley_common.contracts.rest import VoiceConfig
from parley_common.contracts.session import CreateSessionRequest, SessionConfig
from parley_common.languages import (
    LANGUAGE_TAG_PATTERN,
    SUPPORTED_LANGUAGES,
    check_language,
    supported_language,
)


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("es", "es"),
        ("ES", "es"),
        ("es-MX", "es"),
        ("pt_BR", "pt"),
        ("zh-Hans-CN", "zh"),
        ("ja", "ja"),
        ("ru", None),
        ("english", None),
        ("e", None),
        ("es-!!", None),
        ("", None),
        (None, None),
    ],
)
def test_a_tag_names_a_supported_language_by_its_primary_subtag(
    tag: str | None, code: str | None
) -> None:
    assert supported_language(tag) == code


def test_the_nine() -> None:
    assert SUPPORTED_LANGUAGES == ("en", "es", "fr", "de", "it", "pt", "ja", "ko", "zh")
    assert all(check_language(code) == code for code in SUPPORTED_LANGUAGES)


def test_null_asks_for_detection_and_a_region_is_kept() -> None:
    assert SessionConfig(language=None).language is None
    assert SessionConfig.model_validate({"language": "fr-CA"}).language == "fr-CA"


@pytest.mark.parametrize("tag", ["ru", "xx", "en!", "klingon"])
def test_any_other_language_is_refused_with_the_list(tag: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateSessionRequest.model_validate({"language": tag})
    message = refused.value.errors()[0]["msg"]
    assert f"language '{tag}' is not supported" in message
    assert "en, es, fr, de, it, pt, ja, ko, zh" in message


def test_the_schema_pattern_accepts_exactly_what_the_validator_does() -> None:
    schema = SessionConfig.model_json_schema()["properties"]["language"]
    assert schema["pattern"] == LANGUAGE_TAG_PATTERN
    for tag in ["es", "DE", "pt-BR", "zh_Hant", "ru", "esp", "e", "es-"]:
        assert (re.match(LANGUAGE_TAG_PATTERN, tag) is not None) == (
            supported_language(tag) is not None
        )


def test_a_chatbots_voice_config_takes_the_same_languages() -> None:
    assert VoiceConfig.model_validate({"stt_language": "pt-BR"}).stt_language == "pt-BR"
    assert VoiceConfig.model_validate({"stt_language": None}).stt_language is None
    with pytest.raises(ValidationError, match="language '00' is not supported"):
        VoiceConfig.model_validate({"stt_language": "00"})
    schema = VoiceConfig.model_json_schema()["properties"]["stt_language"]
    assert schema["pattern"] == LANGUAGE_TAG_PATTERN
