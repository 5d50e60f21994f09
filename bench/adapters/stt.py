"""The STT adapters' turns: an utterance of 1.6 s (the emulated six words), then ``finish()``.

Live sockets (Deepgram, AssemblyAI) open one connection per utterance, as the session does:
the first 320 ms are fed at once when it opens (the user started speaking), so the connection
setup is part of the time to the first partial; the rest follows, and once the emulator has
every byte and the last interims are read, ``finish()`` is timed to the final. File
transcription (OpenAI, Groq) sends the utterance at ``finish()``; a streamed gpt-4o answer's
first delta is a partial.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette

from bench.adapters.timing import (
    DEADLINE_S,
    Case,
    Served,
    Timings,
    adapter_on,
    emulator,
    emulator_s,
    timed,
)
from parley_common.testing import eventually
from parley_emulators import assemblyai_streaming, deepgram_listen, openai_transcribe
from parley_emulators.base import Moment
from parley_emulators.spoken import SttEmulatorState, audio_of
from parley_stt.providers.assemblyai_streaming import AssemblyAiStreamingProvider
from parley_stt.providers.base import SttProvider, SttResult, SttStream
from parley_stt.providers.deepgram_live import DeepgramLiveProvider
from parley_stt.providers.groq_stt import GroqSttProvider
from parley_stt.providers.openai_stt import OpenAiSttProvider
from parley_stt.settings import CloudSttSettings

__all__ = ["CASES"]

KEY = "bench-stt-key"
# The emulators hear one word per 0.25 s of audio, whatever the bytes: 1.6 s holds all six.
TRANSCRIPT = "Hello there, how are you today?"
FRAME = bytes(1024)  # 32 ms of PCM16 16 kHz, what the STT session feeds
UTTERANCE_FRAMES = 50
# Fed before the socket is up, so the emulator's first audio (one piece) completes the first
# word and its time to the first partial is its own work, not a wait for more audio.
FIRST_FRAMES = 10
SETTLE_S = 0.02  # after the last audio arrived: the interims of the last words are read

Serve = Callable[[], contextlib.AbstractAsyncContextManager[Served]]


class _FirstPartial:
    """A partial sink noting when the first partial arrived."""

    def __init__(self) -> None:
        self.at: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def __call__(self, result: SttResult) -> None:
        if not self.at.done():
            self.at.set_result(time.perf_counter())


async def _utterance(
    provider: SttProvider, first: _FirstPartial, speak: Callable[[SttStream], Awaitable[None]]
) -> tuple[float, float]:
    """One utterance on a new stream: ``speak`` feeds it, then ``finish()`` is timed. Returns
    when the turn ended and when its final came (perf_counter)."""
    stream = await provider.open("en", on_partial=first)
    try:
        await speak(stream)
        ended_at = time.perf_counter()
        result, final_at = await timed(stream.finish())
    finally:
        await stream.aclose()
    if result.text != TRANSCRIPT:
        raise RuntimeError(f"unexpected transcript {result.text!r}")
    return ended_at, final_at


async def _live_turn(
    provider: SttProvider, state: SttEmulatorState, path: str, timings: Timings
) -> None:
    first = _FirstPartial()
    fed_at = 0.0

    async def speak(stream: SttStream) -> None:
        nonlocal fed_at
        fed_at = time.perf_counter()
        for _ in range(FIRST_FRAMES):
            await stream.feed(FRAME)
        await timed(first.at)
        for _ in range(UTTERANCE_FRAMES - FIRST_FRAMES):
            await stream.feed(FRAME)
        socket = state.last(path)
        fed = UTTERANCE_FRAMES * len(FRAME)
        await eventually(lambda: len(audio_of(socket)) >= fed, DEADLINE_S, every_s=0.002)
        await asyncio.sleep(SETTLE_S)

    ended_at, final_at = await _utterance(provider, first, speak)
    socket = state.last(path)
    opening = next(m for m in socket.messages if isinstance(m, bytes))
    if len(opening) < FIRST_FRAMES * len(FRAME):
        raise RuntimeError("the first audio reached the emulator in pieces")
    partial_s = emulator_s(socket, Moment.AUDIO_IN, Moment.PARTIAL)
    timings.add("first partial after first audio", first.at.result() - fed_at, partial_s)
    final_s = emulator_s(socket, Moment.FLUSH_IN, Moment.FINAL)
    timings.add("final after end of turn", final_at - ended_at, final_s)


async def _file_turn(
    provider: SttProvider, state: SttEmulatorState, path: str, streamed: bool, timings: Timings
) -> None:
    first = _FirstPartial()

    async def speak(stream: SttStream) -> None:
        for _ in range(UTTERANCE_FRAMES):
            await stream.feed(FRAME)

    ended_at, final_at = await _utterance(provider, first, speak)
    request = state.last(path)
    if streamed:
        partial_s = emulator_s(request, None, Moment.FIRST_BYTE)
        timings.add("first partial after end of turn", first.at.result() - ended_at, partial_s)
    final_s = emulator_s(request, None, Moment.LAST_BYTE)
    timings.add("final after end of turn", final_at - ended_at, final_s)


def _settings(**values: object) -> CloudSttSettings:
    return CloudSttSettings.model_validate({"stt_cloud_retries": 0, **values})


def _live(
    app: Callable[[Any], Starlette],
    new_state: Callable[..., SttEmulatorState],
    build: Callable[[str], SttProvider],
    path: str,
) -> Serve:
    @contextlib.asynccontextmanager
    async def serve() -> AsyncIterator[Served]:
        state = new_state(api_key=KEY, transcript=TRANSCRIPT)
        async with emulator(app(state)) as (url, connections):
            provider = build(url)
            yield Served(lambda t: _live_turn(provider, state, path, t), connections)

    return serve


def _file(
    build: Callable[[str], OpenAiSttProvider | GroqSttProvider], path: str, streamed: bool
) -> Serve:
    def serve() -> contextlib.AbstractAsyncContextManager[Served]:
        state = SttEmulatorState(api_key=KEY, transcript=TRANSCRIPT)
        app = openai_transcribe.app(state)
        return adapter_on(app, build, lambda stt, t: _file_turn(stt, state, path, streamed, t))

    return serve


def _openai(name: str, model: str) -> Callable[[str], OpenAiSttProvider]:
    settings = _settings(openai_stt_model=model, openai_stt_stream=True)
    return lambda url: OpenAiSttProvider(name, SecretStr(KEY), f"{url}/v1", settings)


CASES = [
    Case(
        "stt",
        "deepgram (nova-3, live socket)",
        _live(
            deepgram_listen.app,
            deepgram_listen.ListenState,
            lambda url: DeepgramLiveProvider(SecretStr(KEY), url, _settings()),
            "/v1/listen",
        ),
    ),
    Case(
        "stt",
        "assemblyai (universal-streaming)",
        _live(
            assemblyai_streaming.app,
            SttEmulatorState,
            lambda url: AssemblyAiStreamingProvider(SecretStr(KEY), url, _settings()),
            "/v3/ws",
        ),
    ),
    Case("stt", "whisper (whisper-1)", _file(_openai("whisper", "whisper-1"), "/v1/", False)),
    Case(
        "stt",
        "openai (gpt-4o-mini-transcribe, streamed)",
        _file(_openai("openai", "gpt-4o-mini-transcribe"), "/v1/", True),
    ),
    Case(
        "stt",
        "groq (whisper-large-v3)",
        _file(
            lambda url: GroqSttProvider(SecretStr(KEY), url, _settings()),
            "/openai/v1/",
            False,
        ),
    ),
]
