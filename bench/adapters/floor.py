"""The floor under the adapters: bare clients (``httpx``, ``websockets``) doing the same
exchanges against the same emulators, so what remains above it is the SDK and Parley's code,
and the floor itself is the local server's framing and the loopback."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator

import httpx
from websockets.asyncio.client import connect

from bench.adapters.llm import MESSAGES
from bench.adapters.timing import Case, Served, Timings, emulator, emulator_s, timed
from bench.adapters.tts import SENTENCE
from parley_emulators import deepgram_speak, openai_chat, openai_speech
from parley_emulators.base import EmulatorState, Moment, starlette_app

__all__ = ["CASES"]

KEY = "bench-floor-key"
_AUTH = {"authorization": f"Bearer {KEY}"}


def _has_content(line: str) -> bool:
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line.removeprefix("data: "))["choices"]
    return bool(choices and choices[0]["delta"].get("content"))


async def _chat_turn(client: httpx.AsyncClient, state: EmulatorState, timings: Timings) -> None:
    body = {
        "model": "bench-model",
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "stream": True,
    }
    started = time.perf_counter()
    async with client.stream("POST", openai_chat.OPENAI_PATH, json=body, headers=_AUTH) as reply:
        lines = reply.aiter_lines()
        first_at = 0.0
        while not first_at:
            line, at = await timed(anext(lines))
            first_at = at if _has_content(line) else 0.0
        async for _ in lines:
            pass
    own_s = emulator_s(state.last(openai_chat.OPENAI_PATH), None, Moment.FIRST_BYTE)
    timings.add("httpx POST -> first SSE token (OpenAI chat)", first_at - started, own_s)


async def _speech_turn(client: httpx.AsyncClient, state: EmulatorState, timings: Timings) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": SENTENCE, "response_format": "pcm"}
    started = time.perf_counter()
    async with client.stream("POST", "/v1/audio/speech", json=body, headers=_AUTH) as reply:
        chunks = reply.aiter_raw()
        _, first_at = await timed(anext(chunks))
        async for _ in chunks:
            pass
    own_s = emulator_s(state.last("/v1/audio/speech"), None, Moment.FIRST_BYTE)
    timings.add("httpx POST -> first audio byte (OpenAI speech)", first_at - started, own_s)


async def _socket_turn(url: str, state: EmulatorState, timings: Timings) -> None:
    query = "model=aura-asteria-en&encoding=linear16&sample_rate=24000"
    address = f"{url.replace('http://', 'ws://')}/v1/speak?{query}"
    started = time.perf_counter()
    async with connect(address, additional_headers={"authorization": f"Token {KEY}"}) as ws:
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        first_at = 0.0
        while not first_at:
            message, at = await timed(ws.recv())
            first_at = at if isinstance(message, bytes) else 0.0
        while not isinstance(message, str) or json.loads(message)["type"] != "Flushed":
            message, _ = await timed(ws.recv())
        await ws.send(json.dumps({"type": "Close"}))
    own_s = emulator_s(state.last("/v1/speak"), Moment.FLUSH_IN, Moment.FIRST_BYTE)
    timings.add("websockets connect, Speak, Flush -> first audio (Aura)", first_at - started, own_s)


@contextlib.asynccontextmanager
async def _chat() -> AsyncIterator[Served]:
    state = EmulatorState(api_key=KEY)
    async with (
        emulator(starlette_app(openai_chat.routes(state))) as (url, connections),
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield Served(lambda t: _chat_turn(client, state, t), connections)


@contextlib.asynccontextmanager
async def _speech() -> AsyncIterator[Served]:
    state = EmulatorState(api_key=KEY)
    async with (
        emulator(openai_speech.app(state)) as (url, connections),
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield Served(lambda t: _speech_turn(client, state, t), connections)


@contextlib.asynccontextmanager
async def _socket() -> AsyncIterator[Served]:
    state = EmulatorState(api_key=KEY)
    async with emulator(deepgram_speak.app(state)) as (url, connections):
        yield Served(lambda t: _socket_turn(url, state, t), connections)


CASES = [
    Case("floor", "bare httpx (LLM floor)", _chat),
    Case("floor", "bare httpx (TTS HTTP floor)", _speech),
    Case("floor", "bare websockets (socket floor)", _socket),
]
