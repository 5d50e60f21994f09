"""AssemblyAI Universal-Streaming v3 over its documented protocol against the /v3/ws emulator:
Turn events as partials, ForceEndpoint at the end of the turn, Terminate on close, chunk
sizes within the service's limits, and every failure translated."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from parley_common.errors import (
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.testing import eventually
from parley_emulators.assemblyai_streaming import app
from parley_emulators.base import Fault, Recorded, running
from parley_emulators.spoken import BYTES_PER_SECOND, SttEmulatorState, audio_of
from parley_stt.providers.assemblyai_streaming import AssemblyAiStreamingProvider
from parley_stt.providers.base import SttResult, SttStream
from parley_stt.settings import CloudSttSettings

KEY = "aai-test-key"
FRAME = bytes(1024)  # 32 ms of PCM16 16 kHz, what the session feeds


@dataclass
class AssemblyAi:
    state: SttEmulatorState
    url: str

    def provider(self, **settings: object) -> AssemblyAiStreamingProvider:
        values: dict[str, object] = {"stt_keepalive_s": 5.0, "stt_finalize_timeout_s": 2.0}
        values.update(settings)
        return AssemblyAiStreamingProvider(
            SecretStr(KEY), self.url, CloudSttSettings.model_validate(values)
        )

    def socket(self) -> Recorded:
        return self.state.last("/v3/ws")

    def commands(self, kind: str) -> list[dict[str, object]]:
        """The client's ``kind`` messages on the latest socket (none before it connects)."""
        messages = self.state.requests[-1].messages if self.state.requests else []
        return [m for m in messages if isinstance(m, dict) and m.get("type") == kind]


@pytest.fixture
async def assemblyai() -> AsyncIterator[AssemblyAi]:
    state = SttEmulatorState(api_key=KEY, transcript="Hello there, how are you today?")
    async with running(app(state)) as url:
        yield AssemblyAi(state, url)


async def feed(stream: SttStream, seconds: float, *, pace_s: float = 0.0) -> None:
    """Feed ``seconds`` of audio in session-sized frames."""
    for _ in range(round(seconds * BYTES_PER_SECOND / len(FRAME))):
        await stream.feed(FRAME)
        if pace_s:
            await asyncio.sleep(pace_s)


async def test_final_is_the_formatted_turn_with_words_and_confidence(
    assemblyai: AssemblyAi,
) -> None:
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.96)

    result = await stream.finish()
    await stream.aclose()

    assert result.is_final
    assert result.text == "Hello there, how are"
    assert result.confidence == pytest.approx(0.92)
    assert result.language == "en"
    assert [w.word for w in result.words] == ["Hello", "there,", "how", "are"]
    assert result.words[1].start == pytest.approx(0.25)
    assert result.words[1].end == pytest.approx(0.45)
    assert len(audio_of(assemblyai.socket())) == 30 * 1024
    query = assemblyai.socket().query
    assert query["speech_model"] == "universal-streaming-english"
    assert (query["sample_rate"], query["encoding"]) == ("16000", "pcm_s16le")
    assert query["format_turns"] == "true"
    assert assemblyai.socket().headers["authorization"] == KEY  # no "Bearer"


async def test_other_languages_use_the_multilingual_model_and_report_the_language(
    assemblyai: AssemblyAi,
) -> None:
    assemblyai.state.language = "es"
    stream = await assemblyai.provider().open(None)
    await feed(stream, 0.48)

    result = await stream.finish()
    await stream.aclose()

    query = assemblyai.socket().query
    assert query["speech_model"] == "universal-streaming-multilingual"
    assert query["language_detection"] == "true"
    assert result.language == "es"


async def test_the_sessions_model_is_passed_through(assemblyai: AssemblyAi) -> None:
    stream = await assemblyai.provider().open("en", model="u3-rt-pro")
    await feed(stream, 0.3)
    await stream.finish()
    await stream.aclose()

    assert assemblyai.socket().query["speech_model"] == "u3-rt-pro"


async def test_turn_events_are_pushed_as_partials(assemblyai: AssemblyAi) -> None:
    partials: list[SttResult] = []

    async def sink(result: SttResult) -> None:
        partials.append(result)

    stream = await assemblyai.provider().open("en", on_partial=sink)
    await feed(stream, 0.8, pace_s=0.002)
    await eventually(lambda: len(partials) >= 3, 2)

    assert [p.text for p in partials[:3]] == ["hello", "hello there", "hello there how"]
    assert not any(p.is_final for p in partials)
    latest = await stream.interim()
    assert latest is not None
    assert latest.text == partials[-1].text
    assert assemblyai.commands("ForceEndpoint") == []
    await stream.aclose()


async def test_forceendpoint_at_finish_and_the_final_in_one_round_trip(
    assemblyai: AssemblyAi,
) -> None:
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.6)
    await asyncio.sleep(0.05)
    assert assemblyai.commands("ForceEndpoint") == []

    started = time.perf_counter()
    first = await stream.finish()
    elapsed = time.perf_counter() - started
    again = await stream.finish()

    assert elapsed < 0.2  # answered by the ended turn, not by a quiet-time timer
    assert len(assemblyai.commands("ForceEndpoint")) == 1
    assert first.text == again.text == "Hello there, how"
    await stream.aclose()


async def test_without_formatting_the_first_ended_turn_is_final(assemblyai: AssemblyAi) -> None:
    stream = await assemblyai.provider(assemblyai_format_turns=False).open("en")
    await feed(stream, 0.6)

    result = await stream.finish()
    await stream.aclose()

    assert assemblyai.socket().query["format_turns"] == "false"
    assert result.text == "hello there how"


async def test_speech_resumed_after_a_speculative_finish_starts_a_new_turn(
    assemblyai: AssemblyAi,
) -> None:
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.48)
    speculative = await stream.finish()
    await feed(stream, 0.48)

    final = await stream.finish()
    await stream.aclose()

    assert speculative.text == "Hello there,"
    assert final.text == "Hello there, how are"
    assert len(assemblyai.commands("ForceEndpoint")) == 2


async def test_forceendpoint_with_no_turn_settles_after_the_quiet_time(
    assemblyai: AssemblyAi,
) -> None:
    assemblyai.state.transcript = ""  # the user coughed
    stream = await assemblyai.provider(stt_settle_ms=150).open("en")
    await feed(stream, 0.3)

    started = time.perf_counter()
    result = await stream.finish()
    elapsed = time.perf_counter() - started
    await stream.aclose()

    assert result.text == ""
    assert 0.12 < elapsed < 0.5


async def test_chunks_stay_within_50_to_1000_ms(assemblyai: AssemblyAi) -> None:
    stream = await assemblyai.provider().open("en")
    await eventually(lambda: bool(assemblyai.state.requests), 1)
    await asyncio.sleep(0.1)  # the handshake is done: frames now go out as they come
    await feed(stream, 0.096)  # three frames: one 64 ms chunk, then 32 ms padded at finish
    await stream.finish()
    await feed(stream, 1.6)
    await stream.finish()
    await stream.aclose()

    chunks = [m for m in assemblyai.socket().messages if isinstance(m, bytes)]
    durations = [len(c) / BYTES_PER_SECOND for c in chunks]
    assert all(0.05 <= d <= 1.0 for d in durations), durations
    assert durations[:2] == pytest.approx([0.064, 0.05])  # the 32 ms left, padded with silence


async def test_audio_buffered_while_connecting_goes_in_allowed_chunks(
    assemblyai: AssemblyAi,
) -> None:
    stream = await assemblyai.provider().open("en")
    await feed(stream, 1.6)  # all of it before the handshake completes

    result = await stream.finish()
    await stream.aclose()

    durations = [
        len(m) / BYTES_PER_SECOND for m in assemblyai.socket().messages if isinstance(m, bytes)
    ]
    assert all(0.05 <= d <= 1.0 for d in durations), durations
    assert result.text == "Hello there, how are you today?"


async def test_keepalive_while_the_user_is_silent(assemblyai: AssemblyAi) -> None:
    stream = await assemblyai.provider(stt_keepalive_s=0.1).open("en")
    await feed(stream, 0.3, pace_s=0.01)
    assert assemblyai.commands("KeepAlive") == []

    await asyncio.sleep(0.45)

    assert len(assemblyai.commands("KeepAlive")) >= 3
    await stream.aclose()


async def test_aclose_mid_finish_terminates_and_closes_at_once(assemblyai: AssemblyAi) -> None:
    assemblyai.state.stream_delay_s = 5.0
    stream = await assemblyai.provider(stt_finalize_timeout_s=10.0).open("en")
    await feed(stream, 0.5)
    finishing = asyncio.create_task(stream.finish())
    await eventually(lambda: bool(assemblyai.commands("ForceEndpoint")), 1)

    finishing.cancel()
    closing_at = time.perf_counter()
    await stream.aclose()

    socket = assemblyai.socket()
    await eventually(lambda: socket.closed_at is not None, 1)
    assert socket.closed_at is not None
    assert socket.closed_at - closing_at < 0.1
    assert len(assemblyai.commands("Terminate")) == 1
    with pytest.raises(asyncio.CancelledError):
        await finishing


@pytest.mark.parametrize("transcript", ["Hello there, how are you today?", ""])
async def test_closed_utterances_leave_no_task_pending(
    assemblyai: AssemblyAi, transcript: str
) -> None:
    # A final turn answers the flush, or (nothing said) the quiet spell after it does.
    assemblyai.state.transcript = transcript
    provider = assemblyai.provider(stt_settle_ms=20)
    before = asyncio.all_tasks()
    streams: list[SttStream] = []  # held, so a task left behind cannot be garbage-collected
    for _ in range(5):
        stream = await provider.open("en")
        streams.append(stream)
        await feed(stream, 0.5)
        await stream.finish()
        await stream.aclose()

    def left() -> list[asyncio.Task[Any]]:
        test = asyncio.current_task()
        return [task for task in asyncio.all_tasks() if task not in before and task is not test]

    with contextlib.suppress(TimeoutError):  # the emulator's side of each socket winds down
        await eventually(lambda: not left(), 1)
    assert [task.get_coro() for task in left()] == []


async def test_wrong_key_is_an_auth_error_naming_the_variable(assemblyai: AssemblyAi) -> None:
    assemblyai.state.api_key = "another-key"
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.3)

    with pytest.raises(ProviderAuthError) as caught:
        await stream.finish()
    await stream.aclose()

    assert "ASSEMBLYAI_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_rate_limited_with_its_hint_then_the_next_utterance_succeeds(
    assemblyai: AssemblyAi,
) -> None:
    assemblyai.state.fail_next(Fault(status=429, headers={"retry-after": "2"}))
    provider = assemblyai.provider()
    stream = await provider.open("en")
    await feed(stream, 0.3)
    with pytest.raises(ProviderRateLimitedError) as caught:
        await stream.finish()
    await stream.aclose()
    assert caught.value.retry_after_s == pytest.approx(2.0)

    stream = await provider.open("en")
    await feed(stream, 0.3)
    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there,"


async def test_server_error_on_connect(assemblyai: AssemblyAi) -> None:
    assemblyai.state.fail_next(Fault(status=500))
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.3)

    with pytest.raises(ProviderFailedError, match="HTTP 500") as caught:
        await stream.finish()
    await stream.aclose()

    assert not isinstance(caught.value, ProviderAuthError | ProviderRateLimitedError)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="malformed"), "malformed"),
        (Fault(kind="drop"), "lost"),
        (Fault(kind="close", status=3005), "3005: server error"),
        (Fault(kind="close", status=3008), "3008: the session expired"),
    ],
)
async def test_broken_streams_fail_the_utterance_clearly(
    assemblyai: AssemblyAi, fault: Fault, expected: str
) -> None:
    assemblyai.state.fail_next(fault)
    stream = await assemblyai.provider().open("en")
    await feed(stream, 0.5)

    with pytest.raises(ProviderFailedError, match=expected) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.provider == "assemblyai"
    socket = assemblyai.socket()
    await eventually(lambda: socket.closed_at is not None, 1)  # nothing left open


async def test_an_unanswered_forceendpoint_times_out(assemblyai: AssemblyAi) -> None:
    assemblyai.state.stream_delay_s = 2.0
    stream = await assemblyai.provider(stt_finalize_timeout_s=0.2).open("en")
    await feed(stream, 0.5)

    with pytest.raises(ParleyTimeoutError, match="AssemblyAI did not return the final"):
        await stream.finish()
    await stream.aclose()
