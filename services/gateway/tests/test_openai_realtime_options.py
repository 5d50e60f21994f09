"""OpenAI Realtime session options mapped to Parley's: turn detection to sensitivity and
semantic end of turn, formats (GA and beta names), max tokens to the response style, the
voice settled against what the TTS offers, pipeline options fixed once the session started,
and the session object shaped as the ``openai`` SDK's type."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.realtime import RealtimeSessionCreateRequest

from parley_common.contracts.session import InterruptSensitivity, ResponseStyle, SessionConfig
from parley_common.errors import BadInputError, ConflictError
from parley_gateway.realtime.openai.options import RealtimeOptions, parse_update


def _options(**base: Any) -> RealtimeOptions:
    return RealtimeOptions.create("gpt-realtime", SessionConfig(**base))


def _updated(options: RealtimeOptions, **session: Any) -> RealtimeOptions:
    return options.updated(parse_update({"type": "realtime", **session}))


def _detection(**turn_detection: Any) -> dict[str, Any]:
    return {"input": {"turn_detection": turn_detection}}


@pytest.mark.parametrize(
    ("detection", "sensitivity", "semantic"),
    [
        ({"type": "server_vad"}, InterruptSensitivity.HIGH, False),
        ({"type": "server_vad", "silence_duration_ms": 700}, InterruptSensitivity.HIGH, False),
        ({"type": "server_vad", "silence_duration_ms": 1200}, InterruptSensitivity.MEDIUM, False),
        ({"type": "server_vad", "silence_duration_ms": 3000}, InterruptSensitivity.LOW, False),
        (
            {"type": "server_vad", "silence_duration_ms": 200, "interrupt_response": False},
            InterruptSensitivity.LOW,
            False,
        ),
        ({"type": "semantic_vad", "eagerness": "high"}, InterruptSensitivity.HIGH, True),
        ({"type": "semantic_vad", "eagerness": "auto"}, InterruptSensitivity.MEDIUM, True),
        ({"type": "semantic_vad", "eagerness": "low"}, InterruptSensitivity.LOW, True),
    ],
)
def test_turn_detection_sets_sensitivity_and_semantic_end_of_turn(
    detection: dict[str, Any], sensitivity: InterruptSensitivity, semantic: bool
) -> None:
    options = _updated(_options(), audio=_detection(**detection))
    assert (options.config.interrupt_sensitivity, options.config.semantic_turn) == (
        sensitivity,
        semantic,
    )
    assert not options.manual
    # What the client reads back is what Parley does.
    shown = options.view()["audio"]["input"]["turn_detection"]
    assert shown["type"] == detection["type"]
    assert shown["interrupt_response"] is (sensitivity is not InterruptSensitivity.LOW)
    if detection["type"] == "server_vad":
        assert shown["silence_duration_ms"] == sensitivity.silence_ms


def test_null_turn_detection_is_manual_commit_and_the_default_is_the_profiles() -> None:
    options = _options(interrupt_sensitivity="low", semantic_turn=False)
    assert options.view()["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 2000
    manual = _updated(options, audio={"input": {"turn_detection": None}})
    assert manual.manual
    assert manual.view()["audio"]["input"]["turn_detection"] is None
    assert manual.config.interrupt_sensitivity is InterruptSensitivity.LOW  # left as it was
    assert _options().view()["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"


@pytest.mark.parametrize(
    ("fmt", "expected", "rate"),
    [
        ({"type": "audio/pcm", "rate": 24000}, "audio/pcm", 24000),
        ({"type": "audio/pcmu"}, "audio/pcmu", 8000),
        ("g711_alaw", "audio/pcma", 8000),
        ("pcm16", "audio/pcm", 24000),
    ],
)
def test_formats_in_ga_and_beta_names_set_the_output_rate(
    fmt: Any, expected: str, rate: int
) -> None:
    options = _updated(_options(), audio={"input": {"format": fmt}, "output": {"format": fmt}})
    assert (options.input_format, options.output_format) == (expected, expected)
    assert options.config.output_sample_rate == rate


@pytest.mark.parametrize(
    "bad",
    [
        {"audio": {"input": {"format": {"type": "audio/opus"}}}},
        {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        {"audio": {"input": {"turn_detection": {"type": "push_to_talk"}}}},
        {"type": "transcription"},
        {"parley": {"output_sample_rate": 16000}},
        {"parley": {"llm_provider": "no-such-model"}},
        {"parley": {"user_id": "someone-else"}},
        {"audio": {"output": {"speed": 3.0}}},
    ],
)
def test_values_parley_cannot_take_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(BadInputError):
        _updated(_options(), **bad)


def test_instructions_tokens_language_speed_and_parley_options() -> None:
    options = _updated(
        _options(),
        instructions="Be brief.",
        max_output_tokens=100,
        audio={
            "input": {"transcription": {"model": "whisper-1", "language": "fr"}},
            "output": {"speed": 1.25},
        },
        parley={"llm_provider": "scripted", "stt_model": "base"},
    )
    config = options.config
    assert (config.system_prompt, config.response_style) == ("Be brief.", ResponseStyle.CONCISE)
    assert (config.language, config.speed) == ("fr", 1.25)
    assert (config.llm_provider.value, config.stt_model) == ("scripted", "base")
    assert options.view()["max_output_tokens"] == ResponseStyle.CONCISE.max_tokens
    cleared = _updated(options, instructions="")
    assert cleared.config.system_prompt is None
    assert options.config.system_prompt == "Be brief."  # an update never changes the original


def test_a_voice_the_tts_lacks_is_its_default_for_openai_names_and_refused_otherwise() -> None:
    options = _updated(_options(), audio={"output": {"voice": "alloy"}})
    options.resolve_voice({"joe"})
    assert options.config.voice is None
    offered = _updated(_options(), audio={"output": {"voice": "joe"}})
    offered.resolve_voice({"joe"})
    assert offered.config.voice == "joe"
    unknown = _updated(_options(), audio={"output": {"voice": "bob"}})
    with pytest.raises(BadInputError, match="not offered"):
        unknown.resolve_voice({"joe"})


def test_pipeline_options_are_fixed_once_the_session_started_the_edge_ones_are_not() -> None:
    started = _options()
    started.output_sample_rate = started.config.output_sample_rate
    edge = _updated(
        started,
        output_modalities=["text"],
        tools=[{"type": "function", "name": "lookup"}],
        audio={"input": {"turn_detection": None}, "output": {"format": {"type": "audio/pcmu"}}},
    )
    edge.check_unchanged(started)
    assert edge.config.output_sample_rate == 24000  # the TTS keeps its rate; the edge converts
    with pytest.raises(ConflictError, match="system_prompt"):
        _updated(started, instructions="Now be rude.").check_unchanged(started)


def test_the_model_cannot_change() -> None:
    with pytest.raises(BadInputError, match="model"):
        _updated(_options(), model="another-model")
    assert _updated(_options(), model="gpt-realtime").model == "gpt-realtime"


def test_the_session_object_is_the_sdks() -> None:
    options = _updated(
        _options(),
        tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        audio={"output": {"format": {"type": "audio/pcma"}}},
    )
    view = options.view("a-session-id")
    parsed = RealtimeSessionCreateRequest.model_validate(view)
    assert parsed.audio is not None
    assert parsed.audio.output is not None
    assert parsed.audio.output.format is not None
    assert parsed.audio.output.format.type == "audio/pcma"
    assert view["parley"]["session_id"] == "a-session-id"
    assert view["tools"][0]["name"] == "lookup"
