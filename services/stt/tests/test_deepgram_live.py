"""Deepgram live STT through deepgram-sdk against the /v1/listen emulator: partials, Finalize
at the end of the turn, KeepAlive while silent, closing, and every failure translated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from parley_common.errors import (
    ParleyTimeoutError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.testing import eventually
from parley_emulators.base import Fault, Recorded, running
from parley_emulators.deepgram_listen import ListenState, app
from parley_emulators.spoken import audio_of
from parley_stt.providers.base import SttResult, SttStream
from parley_stt.providers.deepgram_live import DeepgramLiveProvider
from parley_stt.settings import CloudSttSettings

KEY = "dg-test-key"
FRAME = bytes(1024)  # 32 ms of PCM16 16 kHz, what the session feeds
SECOND = 32_000


@dataclass
class Deepgram:
    state: ListenState
    url: str

    def provider(self, **settings: object) -> DeepgramLiveProvider:
        values: dict[str, object] = {"stt_keepalive_s": 5.0, "stt_finalize_timeout_s": 2.0}
        values.update(settings)
        return DeepgramLiveProvider(
            SecretStr(KEY), self.url, CloudSttSettings.model_validate(values)
        )

    def socket(self) -> Recorded:
        return self.state.last("/v1/listen")

    def commands(self, kind: str) -> list[dict[str, object]]:
        """The client's ``kind`` messages on the latest socket (none before it connects)."""
        sockets = [r for r in self.state.requests if r.method == "WEBSOCKET"]
        messages = sockets[-1].messages if sockets else []
        return [m for m in messages if isinstance(m, dict) and m.get("type") == kind]


@pytest.fixture
async def deepgram() -> AsyncIterator[Deepgram]:
    state = ListenState(api_key=KEY, transcript="Hello there, how are you today?")
    async with running(app(state)) as url:
        yield Deepgram(state, url)


async def feed(stream: SttStream, seconds: float, *, pace_s: float = 0.0) -> None:
    """Feed ``seconds`` of audio in session-sized frames."""
    for _ in range(round(seconds * SECOND / len(FRAME))):
        await stream.feed(FRAME)
        if pace_s:
            await asyncio.sleep(pace_s)


async def test_final_text_confidence_words_and_language(deepgram: Deepgram) -> None:
    stream = await deepgram.provider().open("en-US")
    await feed(stream, 0.96)

    result = await stream.finish()
    await stream.aclose()

    assert result.is_final
    assert result.text == "Hello there, how are"  # the words starting in the audio fed
    assert result.confidence == pytest.approx(0.92)
    assert result.language == "en-US"
    assert [w.word for w in result.words] == ["Hello", "there,", "how", "are"]
    assert result.words[1].start == pytest.approx(0.25)
    assert result.words[1].end == pytest.approx(0.45)
    assert len(audio_of(deepgram.socket())) == 30 * 1024  # every byte reached Deepgram
    query = deepgram.socket().query
    assert query["model"] == "nova-3"
    assert (query["encoding"], query["sample_rate"], query["channels"]) == (
        "linear16",
        "16000",
        "1",
    )
    assert query["interim_results"] == "true"
    assert query["language"] == "en-US"
    assert deepgram.socket().headers["authorization"] == f"Token {KEY}"


async def test_no_language_asks_deepgram_to_detect_it(deepgram: Deepgram) -> None:
    deepgram.state.language = "de"
    stream = await deepgram.provider().open(None)
    await feed(stream, 0.5)

    result = await stream.finish()
    await stream.aclose()

    assert deepgram.socket().query["language"] == "multi"
    assert result.language == "de"


async def test_model_of_the_session_then_the_configured_default(deepgram: Deepgram) -> None:
    provider = deepgram.provider(deepgram_stt_model="nova-2-general")
    for model, expected in (("nova-3-medical", "nova-3-medical"), (None, "nova-2-general")):
        stream = await provider.open("en", model=model)
        await feed(stream, 0.3)
        await stream.finish()
        await stream.aclose()
        assert deepgram.socket().query["model"] == expected


async def test_interim_results_are_pushed_as_partials(deepgram: Deepgram) -> None:
    partials: list[SttResult] = []

    async def sink(result: SttResult) -> None:
        partials.append(result)

    stream = await deepgram.provider().open("en", on_partial=sink)
    assert await stream.interim() is None
    await feed(stream, 0.8, pace_s=0.002)
    await eventually(lambda: len(partials) >= 3, 2)

    texts = [p.text for p in partials]
    assert texts[:3] == ["Hello", "Hello there,", "Hello there, how"]
    assert not any(p.is_final for p in partials)
    latest = await stream.interim()
    assert latest is not None
    assert latest.text == texts[-1]
    assert deepgram.commands("Finalize") == []  # partials never cost a Finalize
    await stream.aclose()


async def test_finalize_is_sent_at_finish_and_the_final_comes_in_one_round_trip(
    deepgram: Deepgram,
) -> None:
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.6)
    await asyncio.sleep(0.05)
    assert deepgram.commands("Finalize") == []

    started = time.perf_counter()
    first = await stream.finish()
    elapsed = time.perf_counter() - started
    again = await stream.finish()  # the end of the turn after a speculative finish

    assert elapsed < 0.5  # the emulator answers at once: no waiting on a timer
    assert len(deepgram.commands("Finalize")) == 1  # no new audio: no second Finalize
    assert first.text == again.text == "Hello there, how"
    await stream.aclose()


async def test_speech_resumed_after_a_speculative_finish_is_covered_by_the_next(
    deepgram: Deepgram,
) -> None:
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.48)
    speculative = await stream.finish()
    await feed(stream, 0.48)

    final = await stream.finish()
    await stream.aclose()

    assert speculative.text == "Hello there,"
    assert final.text == "Hello there, how are"
    assert len(deepgram.commands("Finalize")) == 2
    assert [w.start for w in final.words] == pytest.approx([0.0, 0.25, 0.5, 0.75])


async def test_pieces_deepgram_finalised_on_its_own_are_joined(deepgram: Deepgram) -> None:
    deepgram.state.final_every_s = 0.5
    stream = await deepgram.provider().open("en")
    await feed(stream, 1.6)

    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there, how are you today?"
    assert len(result.words) == 6


async def test_finish_needs_no_answer_when_deepgram_already_finalised_everything(
    deepgram: Deepgram,
) -> None:
    deepgram.state.final_every_s = 0.256
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.512)  # exactly two automatic finals: nothing left to finalise
    await asyncio.sleep(0.1)

    result = await asyncio.wait_for(stream.finish(), 0.5)
    await stream.aclose()

    assert result.text == "Hello there, how"
    assert len(deepgram.commands("Finalize")) == 1  # sent, unanswered (nothing buffered)


async def test_keepalive_while_the_user_is_silent(deepgram: Deepgram) -> None:
    stream = await deepgram.provider(stt_keepalive_s=0.1).open("en")
    await feed(stream, 0.3, pace_s=0.01)  # audio every 10 ms: no KeepAlive needed
    assert deepgram.commands("KeepAlive") == []

    await asyncio.sleep(0.45)  # the user pauses

    assert len(deepgram.commands("KeepAlive")) >= 3
    await stream.aclose()


async def test_keepalive_keeps_a_silent_stream_past_deepgrams_idle_timeout(
    deepgram: Deepgram,
) -> None:
    deepgram.state.idle_timeout_s = 0.3
    stream = await deepgram.provider(stt_keepalive_s=0.1).open("en")
    await feed(stream, 0.3)
    await asyncio.sleep(0.8)
    await feed(stream, 0.3)

    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there, how"


async def test_deepgram_closing_an_idle_stream_1011_is_reported(deepgram: Deepgram) -> None:
    deepgram.state.idle_timeout_s = 0.2
    stream = await deepgram.provider(stt_keepalive_s=5.0).open("en")
    await feed(stream, 0.3)
    await asyncio.sleep(0.5)

    with pytest.raises(ProviderFailedError, match="1011") as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.provider == "deepgram"


async def test_aclose_mid_finish_sends_closestream_and_closes_at_once(deepgram: Deepgram) -> None:
    deepgram.state.stream_delay_s = 5.0  # Deepgram is slow to answer Finalize
    stream = await deepgram.provider(stt_finalize_timeout_s=10.0).open("en")
    await feed(stream, 0.5)
    finishing = asyncio.create_task(stream.finish())
    await eventually(lambda: bool(deepgram.commands("Finalize")), 1)

    finishing.cancel()  # the user spoke again / the session ended
    closing_at = time.perf_counter()
    await stream.aclose()

    socket = deepgram.socket()
    await eventually(lambda: socket.closed_at is not None, 1)
    assert socket.closed_at is not None
    assert socket.closed_at - closing_at < 0.1
    assert len(deepgram.commands("CloseStream")) == 1
    with pytest.raises(asyncio.CancelledError):
        await finishing


async def test_aclose_after_the_final_sends_closestream(deepgram: Deepgram) -> None:
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.3)
    await stream.finish()

    await stream.aclose()

    socket = deepgram.socket()
    await eventually(lambda: socket.closed_at is not None, 1)
    assert len(deepgram.commands("CloseStream")) == 1


async def test_wrong_key_is_an_auth_error_naming_the_variable(deepgram: Deepgram) -> None:
    deepgram.state.api_key = "another-key"
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.3)

    with pytest.raises(ProviderAuthError) as caught:
        await stream.finish()
    await stream.aclose()

    assert "DEEPGRAM_API_KEY" in caught.value.message
    assert KEY not in caught.value.message
    assert "401" in caught.value.message


async def test_rate_limited_then_the_next_utterance_succeeds(deepgram: Deepgram) -> None:
    deepgram.state.fail_next(Fault(status=429, headers={"retry-after": "2"}))
    provider = deepgram.provider()
    stream = await provider.open("en")
    await feed(stream, 0.3)
    with pytest.raises(ProviderRateLimitedError):
        await stream.finish()
    await stream.aclose()

    stream = await provider.open("en")
    await feed(stream, 0.3)
    result = await stream.finish()
    await stream.aclose()

    assert result.text == "Hello there,"


async def test_server_error_on_connect(deepgram: Deepgram) -> None:
    deepgram.state.fail_next(Fault(status=503))
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.3)

    with pytest.raises(ProviderFailedError, match="HTTP 503") as caught:
        await stream.finish()
    await stream.aclose()

    assert not isinstance(caught.value, ProviderAuthError | ProviderRateLimitedError)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="malformed"), "malformed"),
        (Fault(kind="drop"), "lost"),
        (Fault(kind="close", status=1008), "1008: it could not decode the audio"),
    ],
)
async def test_broken_streams_fail_the_utterance_clearly(
    deepgram: Deepgram, fault: Fault, expected: str
) -> None:
    deepgram.state.fail_next(fault)
    stream = await deepgram.provider().open("en")
    await feed(stream, 0.5)

    with pytest.raises(ProviderFailedError, match=expected) as caught:
        await stream.finish()
    await stream.aclose()

    assert caught.value.provider == "deepgram"
    socket = deepgram.socket()
    await eventually(lambda: socket.closed_at is not None, 1)  # nothing left open


async def test_an_unanswered_finalize_times_out(deepgram: Deepgram) -> None:
    deepgram.state.stream_delay_s = 2.0
    stream = await deepgram.provider(stt_finalize_timeout_s=0.2).open("en")
    await feed(stream, 0.3)

    with pytest.raises(ParleyTimeoutError, match="final transcript"):
        await stream.finish()
    await stream.aclose()


async def test_an_empty_utterance_opens_nothing_it_must_wait_for(deepgram: Deepgram) -> None:
    stream = await deepgram.provider().open("en")

    result = await stream.finish()
    await stream.aclose()

    assert (result.text, result.is_final) == ("", True)


async def test_prerecorded_listen_through_the_sdk(deepgram: Deepgram) -> None:
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    from parley_stt.providers.batch import wav_bytes

    async with httpx.AsyncClient() as http:
        client = AsyncDeepgramClient(
            api_key=KEY,
            environment=DeepgramClientEnvironment(
                base=deepgram.url,
                production=deepgram.url,
                agent=deepgram.url,
                agent_rest=deepgram.url,
            ),
            httpx_client=http,
        )
        reply = await client.listen.v1.media.transcribe_file(
            request=wav_bytes(bytes(SECOND // 2)), model="nova-3", punctuate=True
        )

    alternative = reply.results.channels[0].alternatives[0]
    assert alternative.transcript == "Hello there,"
    assert deepgram.state.last("/v1/listen").method == "POST"
