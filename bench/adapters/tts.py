"""The TTS adapters' turns: one first sentence of an answer, timed to its first audio and then
read to the end, as the TTS session does. ``synthesize`` goes over each provider's HTTP
stream with one adapter for every turn (its connection pool is the worker's); an input
stream opens its socket per turn, as the session does, so the handshake is in its time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from pydantic import SecretStr
from starlette.applications import Starlette

from bench.adapters.timing import (
    DEADLINE_S,
    Case,
    Closable,
    Served,
    Timings,
    adapter_on,
    emulator_s,
    first_then_rest,
    timed,
)
from parley_emulators import deepgram_speak, elevenlabs, openai_speech, playht
from parley_emulators.base import EmulatorState, Moment
from parley_tts.providers.base import StreamingTtsProvider, TtsProvider
from parley_tts.providers.deepgram_aura import DeepgramAuraProvider
from parley_tts.providers.elevenlabs import ElevenLabsProvider
from parley_tts.providers.openai_speech import OpenAiSpeechProvider
from parley_tts.providers.playht import PlayHtProvider

__all__ = ["CASES", "SENTENCE"]

KEY = "bench-tts-key"
SENTENCE = "Sure, the weather in Paris today is sunny with a light breeze."


class _CloudTts(TtsProvider, Closable, Protocol):
    """A TTS adapter that owns an HTTP client."""


async def _sentence(provider: Any, state: EmulatorState, path: str, timings: Timings) -> None:
    synthesizer: TtsProvider = provider
    started = time.perf_counter()
    first_at = await first_then_rest(synthesizer.synthesize(SENTENCE, None))
    own_s = emulator_s(state.last(path), None, Moment.FIRST_BYTE)
    timings.add("first audio byte (synthesize)", first_at - started, own_s)


async def _input_stream(provider: Any, state: EmulatorState, path: str, timings: Timings) -> None:
    streaming: StreamingTtsProvider = provider
    started = time.perf_counter()
    stream = await asyncio.wait_for(streaming.open_stream(None), DEADLINE_S)
    try:
        await stream.send(SENTENCE)
        await stream.flush()
        chunks = aiter(stream)
        _, first_at = await timed(anext(chunks))
        await stream.finish()
        async for _ in chunks:
            pass
    finally:
        await stream.aclose()
    own_s = emulator_s(state.last(path), Moment.FLUSH_IN, Moment.FIRST_BYTE)
    timings.add("first audio chunk (open_stream, send, flush)", first_at - started, own_s)


Speak = Callable[[Any, EmulatorState, str, Timings], Coroutine[Any, Any, None]]


def _case(
    adapter: str,
    app: Callable[[Any], Starlette],
    new_state: Callable[[], EmulatorState],
    build: Callable[[str], _CloudTts],
    path: str,
    speak: Speak,
) -> Case:
    def serve() -> contextlib.AbstractAsyncContextManager[Served]:
        state = new_state()
        state.api_key = KEY
        return adapter_on(app(state), build, lambda tts, t: speak(tts, state, path, t))

    return Case("tts", adapter, serve)


def _openai(url: str) -> OpenAiSpeechProvider:
    return OpenAiSpeechProvider(SecretStr(KEY), base_url=f"{url}/v1")


def _elevenlabs(url: str) -> ElevenLabsProvider:
    return ElevenLabsProvider(SecretStr(KEY), base_url=url)


def _aura(url: str) -> DeepgramAuraProvider:
    return DeepgramAuraProvider(SecretStr(KEY), base_url=url)


def _playht(url: str) -> PlayHtProvider:
    voice = str(playht.VOICES[0]["id"])
    return PlayHtProvider(SecretStr(KEY), playht.USER_ID, base_url=url, voice=voice)


_ELEVENLABS = (elevenlabs.app, elevenlabs.ElevenLabsState, _elevenlabs)
_AURA = (deepgram_speak.app, EmulatorState, _aura)

CASES = [
    _case(
        "openai (tts-1)",
        openai_speech.app,
        EmulatorState,
        _openai,
        "/v1/audio/speech",
        _sentence,
    ),
    _case("elevenlabs (HTTP stream)", *_ELEVENLABS, "/stream", _sentence),
    _case("elevenlabs (stream-input socket)", *_ELEVENLABS, "/stream-input", _input_stream),
    _case("deepgram aura (REST)", *_AURA, "/v1/speak", _sentence),
    _case("deepgram aura (socket)", *_AURA, "/v1/speak", _input_stream),
    _case("playht (legacy v2 HTTP)", playht.app, EmulatorState, _playht, "/tts/stream", _sentence),
]
