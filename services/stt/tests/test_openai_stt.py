"""OpenAI transcription (``whisper`` and ``openai``) through the openai SDK against the
transcription emulator: whisper-1's verbose_json, gpt-4o's streamed deltas as partials, one
request per utterance length, connections reused, cancellation, and every failure translated."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.adapters.timing import Connections, emulator
from parley_common.errors import (
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.testing import eventually
from parley_emulators.base import Fault, Moment, Recorded
from parley_emulators.openai_transcribe import app
from parley_emulators.spoken import BYTES_PER_SECOND, SttEmulatorState
from parley_stt.providers.base import PartialSink, SttResult, SttStream
from parley_stt.providers.openai_stt import OpenAiSttProvider
from parley_stt.settings import CloudSttSettings

KEY = "sk-test-key"
PATH = "/v1/audio/transcriptions"


@dataclass
class OpenAi:
    state: SttEmulatorState
    url: str
    connections: Connections  # the TCP connections the emulator was sent requests on
    built: list[OpenAiSttProvider] = field(default_factory=list)

    def provider(self, name: str = "openai", **settings: object) -> OpenAiSttProvider:
        values: dict[str, object] = {"stt_cloud_retries": 0}
        values.update(settings)
        provider = OpenAiSttProvider(
            name, SecretStr(KEY), f"{self.url}/v1", CloudSttSettings.model_validate(values)
        )
        self.built.append(provider)
        return provider

    def request(self) -> Recorded:
        return self.state.last(PATH)


def holding_the_end(asgi: ASGIApp, hold_s: float) -> ASGIApp:
    """``asgi`` with the end of every response body sent ``hold_s`` late."""

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await asyncio.sleep(hold_s)
            await send(message)

        await asgi(scope, receive, sending)

    return held


@pytest.fixture
def hold_s() -> float:
    """How late the emulator ends each response body (0: at once, as OpenAI does)."""
    return 0.0


@pytest.fixture
async def openai_emulator(hold_s: float) -> AsyncIterator[OpenAi]:
    state = SttEmulatorState(api_key=KEY, transcript="Hello there, how are you today?")
    served = holding_the_end(app(state), hold_s) if hold_s else app(state)
    async with emulator(served) as (url, connections):
        openai = OpenAi(state, url, connections)
        yield openai
        for provider in openai.built:
            await provider.aclose()


async def utterance(
    provider: OpenAiSttProvider,
    seconds: float,
    *,
    model: str | None = None,
    on_partial: PartialSink | None = None,
) -> tuple[SttStream, SttResult]:
    """An utterance of ``seconds`` of audio, finished."""
    stream = await provider.open("en-US", model=model, on_partial=on_partial)
    await stream.feed(bytes(round(seconds * BYTES_PER_SECOND)))
    return stream, await stream.finish()


async def test_whisper1_verbose_json_gives_words_confidence_and_language(
    openai_emulator: OpenAi,
) -> None:
    openai_emulator.state.language = "de"
    stream = await openai_emulator.provider().open(None)
    await stream.feed(bytes(round(0.96 * BYTES_PER_SECOND)))

    result = await stream.finish()
    await stream.aclose()

    assert result.is_final
    assert result.text == "Hello there, how are"
    assert result.confidence == pytest.approx(math.exp(-0.15))
    assert result.language == "de"  # the reply's "german"
    assert [w.word for w in result.words] == ["Hello", "there,", "how", "are"]
    assert result.words[2].start == pytest.approx(0.5)
    body = openai_emulator.request().body
    assert body["model"] == "whisper-1"
    assert body["response_format"] == "verbose_json"
    assert "language" not in body  # detect
    assert openai_emulator.request().headers["authorization"] == f"Bearer {KEY}"


async def test_the_utterance_is_sent_as_one_wav(openai_emulator: OpenAi) -> None:
    stream, _ = await utterance(openai_emulator.provider(), 0.5)
    await stream.aclose()

    request = openai_emulator.request()
    wav = request.messages[0]
    assert wav[:4] == b"RIFF"
    assert len(wav) == 44 + 16_000  # the header and every byte fed
    assert request.body["language"] == "en"  # en-US as Whisper knows it


async def test_one_request_per_audio_length_and_no_billed_partials(
    openai_emulator: OpenAi,
) -> None:
    stream = await openai_emulator.provider().open("en")
    await stream.feed(bytes(BYTES_PER_SECOND // 2))
    assert await stream.interim() is None

    speculative = await stream.finish()
    at_end_of_turn = await stream.finish()
    await stream.feed(bytes(BYTES_PER_SECOND // 2))  # the user went on
    longer = await stream.finish()
    await stream.aclose()

    assert speculative == at_end_of_turn
    assert longer.text == "Hello there, how are"
    assert len(openai_emulator.state.requests) == 2


async def test_too_little_audio_is_not_sent(openai_emulator: OpenAi) -> None:
    stream, result = await utterance(openai_emulator.provider(), 0.05)
    await stream.aclose()

    assert (result.text, result.is_final) == ("", True)
    assert openai_emulator.state.requests == []


async def test_gpt4o_streams_its_deltas_as_partials(openai_emulator: OpenAi) -> None:
    partials: list[SttResult] = []

    async def sink(result: SttResult) -> None:
        partials.append(result)

    provider = openai_emulator.provider()
    stream, result = await utterance(provider, 0.96, model="gpt-4o-transcribe", on_partial=sink)
    await stream.aclose()

    assert [p.text for p in partials] == [
        "Hello",
        "Hello there,",
        "Hello there, how",
        "Hello there, how are",
    ]
    assert not any(p.is_final for p in partials)
    assert result.text == "Hello there, how are"
    assert result.confidence == pytest.approx(0.92)
    body = openai_emulator.request().body
    assert (body["model"], body["response_format"], body["stream"]) == (
        "gpt-4o-transcribe",
        "json",
        "true",
    )
    assert body["include[]"] == "logprobs"


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe"])
async def test_utterances_share_one_connection(openai_emulator: OpenAi, model: str) -> None:
    provider = openai_emulator.provider()
    for _ in range(5):
        stream, result = await utterance(provider, 0.5, model=model)
        await stream.aclose()
        assert result.text == "Hello there,"

    assert len(openai_emulator.state.requests) == 5
    assert len(openai_emulator.connections.seen) == 1  # no TCP + TLS handshake per utterance


@pytest.mark.parametrize("hold_s", [0.5])
async def test_the_streamed_final_does_not_wait_for_the_end_of_the_body(
    openai_emulator: OpenAi,
) -> None:
    provider = openai_emulator.provider()
    stream, result = await utterance(provider, 0.5, model="gpt-4o-transcribe")
    await stream.aclose()
    request = openai_emulator.request()

    assert result.text == "Hello there,"
    assert Moment.LAST_BYTE not in request.marks  # the body's end is still on its way
    assert request.closed_at is None  # ... and awaited, to keep the connection
    closing_at = time.perf_counter()
    await provider.aclose()  # the worker shuts down meanwhile
    await eventually(lambda: request.closed_at is not None, 1)
    assert request.closed_at is not None
    assert request.closed_at - closing_at < 0.1


@pytest.mark.parametrize("hold_s", [1.5])
async def test_a_body_held_open_after_the_transcript_loses_its_connection(
    openai_emulator: OpenAi,
) -> None:
    stream, _ = await utterance(openai_emulator.provider(), 0.5, model="gpt-4o-transcribe")
    final_at = time.perf_counter()
    await stream.aclose()
    request = openai_emulator.request()

    await eventually(lambda: request.closed_at is not None, 1.4)
    assert request.closed_at is not None
    assert 0.9 < request.closed_at - final_at < 1.3  # read on for a second, then given up


async def test_gpt4o_without_streaming_answers_json_with_logprobs(
    openai_emulator: OpenAi,
) -> None:
    provider = openai_emulator.provider(
        openai_stt_model="gpt-4o-mini-transcribe", openai_stt_stream=False
    )
    stream, result = await utterance(provider, 0.5)
    await stream.aclose()

    assert result.text == "Hello there,"
    assert result.confidence == pytest.approx(0.92)
    body = openai_emulator.request().body
    assert body["model"] == "gpt-4o-mini-transcribe"  # the configured default
    assert "stream" not in body


async def test_the_session_model_wins_over_the_default(openai_emulator: OpenAi) -> None:
    provider = openai_emulator.provider(openai_stt_model="gpt-4o-transcribe")
    stream, _ = await utterance(provider, 0.3, model="whisper-1")
    await stream.aclose()

    assert openai_emulator.request().body["model"] == "whisper-1"


async def test_wrong_key_is_an_auth_error_of_the_chosen_name(openai_emulator: OpenAi) -> None:
    openai_emulator.state.api_key = "another"
    stream = await openai_emulator.provider("whisper").open("en")
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ProviderAuthError) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.provider == "whisper"
    assert "OPENAI_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_rate_limit_reported_with_the_providers_hint(openai_emulator: OpenAi) -> None:
    openai_emulator.state.fail_next(Fault(status=429, headers={"retry-after": "7"}))
    stream = await openai_emulator.provider().open("en")
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ProviderRateLimitedError) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.retry_after_s == pytest.approx(7.0)


async def test_rate_limited_then_the_sdk_retry_succeeds(openai_emulator: OpenAi) -> None:
    openai_emulator.state.fail_next(Fault(status=429, headers={"retry-after-ms": "20"}))
    stream, result = await utterance(openai_emulator.provider(stt_cloud_retries=1), 0.5)
    await stream.aclose()

    assert result.text == "Hello there,"
    assert len(openai_emulator.state.requests) == 2


async def test_server_error(openai_emulator: OpenAi) -> None:
    openai_emulator.state.fail_next(Fault(status=503))
    stream = await openai_emulator.provider().open("en")
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ProviderFailedError, match="HTTP 503") as caught:
        await stream.finish()
    await stream.aclose()

    assert not isinstance(caught.value, ProviderAuthError | ProviderRateLimitedError)


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe"])
async def test_malformed_reply(openai_emulator: OpenAi, model: str) -> None:
    openai_emulator.state.fail_next(Fault(kind="malformed"))
    stream = await openai_emulator.provider().open("en", model=model)
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ProviderFailedError, match="malformed"):
        await stream.finish()
    await stream.aclose()


async def test_stream_dropped_mid_transcription(openai_emulator: OpenAi) -> None:
    openai_emulator.state.fail_next(Fault(kind="drop"))
    stream = await openai_emulator.provider().open("en", model="gpt-4o-transcribe")
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ProviderFailedError, match="lost"):
        await stream.finish()
    await stream.aclose()


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe"])
async def test_cancelled_mid_request_closes_the_connection_at_once(
    openai_emulator: OpenAi, model: str
) -> None:
    openai_emulator.state.stream_delay_s = 2.0
    stream = await openai_emulator.provider().open("en", model=model)
    await stream.feed(bytes(BYTES_PER_SECOND))
    finishing = asyncio.create_task(stream.finish())
    await eventually(lambda: bool(openai_emulator.state.requests), 2)
    await asyncio.sleep(0.05)

    finishing.cancel()  # the user spoke again
    cancelled_at = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    request = openai_emulator.request()
    await eventually(lambda: request.closed_at is not None, 1)
    await stream.aclose()

    assert request.closed_at is not None
    assert request.closed_at - cancelled_at < 0.1


async def test_a_slow_answer_times_out(openai_emulator: OpenAi) -> None:
    openai_emulator.state.stream_delay_s = 2.0
    stream = await openai_emulator.provider(stt_cloud_timeout_s=0.2).open("en")
    await stream.feed(bytes(BYTES_PER_SECOND))

    with pytest.raises(ParleyTimeoutError, match="OpenAI did not return a transcript"):
        await stream.finish()
    await stream.aclose()
