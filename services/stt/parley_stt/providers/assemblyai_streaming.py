"""AssemblyAI Universal-Streaming v3 (``/v3/ws``), spoken over its documented protocol.

Why not the ``assemblyai`` SDK's ``AsyncRealTimeTranscriber`` (1.8): it drops a text frame that
is not JSON with a log line, and a message that fails its models ends its reader task without
telling anyone, so a broken reply would surface as a silent stall instead of an error; its
``disconnect`` also waits up to 2 s plus ``terminate_timeout`` for the server. Parley needs
each failure named at once, so this adapter speaks the same wire protocol with ``websockets``.

One connection per utterance. Turn events are pushed as partials; ``finish`` sends
``ForceEndpoint`` and waits for the turn to end (and be formatted, with ``format_turns``);
``aclose`` sends ``Terminate`` and closes the socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import websockets
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from websockets.asyncio.client import ClientConnection, connect

from parley_common.contracts.bus import Word
from parley_common.errors import ParleyError
from parley_common.languages import primary_language
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_stt.providers.base import BYTES_PER_SECOND, SAMPLE_RATE, PartialSink
from parley_stt.providers.languages import (
    ASSEMBLYAI_LANGUAGES,
    RefusedStream,
    detection_refused,
    language_refused,
)
from parley_stt.providers.live import Heard, LiveStream, LiveTiming, websocket_origin
from parley_stt.settings import CloudSttSettings

__all__ = ["DEFAULT_STREAMING_URL", "AssemblyAiStreamingProvider"]

DEFAULT_STREAMING_URL = "wss://streaming.assemblyai.com"
ENGLISH_MODEL = "universal-streaming-english"
MULTILINGUAL_MODEL = "universal-streaming-multilingual"
# AssemblyAI takes audio chunks of 50 to 1000 ms (close code 3007 otherwise).
_MIN_CHUNK = BYTES_PER_SECOND // 20
_MAX_CHUNK = BYTES_PER_SECOND // 2
# Close codes AssemblyAI documents for v3, and what they mean for the person reading.
_CLOSE_MEANINGS = {
    3005: "server error",
    3006: "it rejected the session's parameters",
    3007: "an audio chunk was outside 50-1000 ms",
    3008: "the session expired",
}
# What opening the socket raises; a refused upgrade carries AssemblyAI's status and headers.
_CONNECT_ERRORS = SdkErrors(
    status=(websockets.exceptions.InvalidStatus,),
    timeouts=(TimeoutError,),
    connection=(OSError, websockets.exceptions.WebSocketException),
)
_AUTH_CLOSE = frozenset({1008, 4001, 4002, 4003})
_BUSY_CLOSE = frozenset({3009, 4029, 4102})


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Word(_Reply):
    start: int  # ms
    end: int
    text: str
    confidence: float | None = None


class _Turn(_Reply):
    turn_order: int
    turn_is_formatted: bool = False
    end_of_turn: bool
    transcript: str
    words: list[_Word] = Field(default_factory=list)
    language_code: str | None = None


class _AssemblyAiWire:
    """One ``/v3/ws`` connection, read as Parley's :class:`Heard`."""

    def __init__(
        self,
        vendor: Vendor,
        url: str,
        api_key: SecretStr,
        *,
        format_turns: bool,
        connect_timeout_s: float,
        settle_s: float,
    ) -> None:
        self.vendor = vendor
        self._url = url
        self._api_key = api_key
        self._format_turns = format_turns
        self._connect_timeout_s = connect_timeout_s
        self._settle_s = settle_s
        self._ws: ClientConnection | None = None
        self._open_turn: int | None = None  # a turn with words that has not ended
        self._unformatted: int | None = None  # an ended turn whose formatted copy is due
        self._flush_s: float | None = None  # audio covered by a ForceEndpoint not yet answered
        # Resolved by a flush, to restart the quiet timer: a plain future, so a stream closed
        # while it waits leaves no task behind.
        self._flushed: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        """Open the WebSocket."""
        with _CONNECT_ERRORS.translated(
            self.vendor, timeout_s=self._connect_timeout_s, waiting_for="a connection"
        ):
            self._ws = await connect(
                self._url,
                additional_headers={"Authorization": self._api_key.get_secret_value()},
                open_timeout=self._connect_timeout_s,
                close_timeout=0.5,
            )

    async def messages(self) -> AsyncIterator[Heard | float]:
        """Turns as :class:`Heard`; after a ForceEndpoint with no turn in progress, a short
        quiet spell means there is nothing more to finalise."""
        ws = self._require()
        loop = asyncio.get_running_loop()
        receiving: asyncio.Task[str | bytes] | None = None
        try:
            while True:
                if receiving is None:
                    receiving = asyncio.create_task(ws.recv())
                flushed = self._flushed = loop.create_future()  # a flush from now on wakes us
                quiet = self._settle_s if self._flush_s is not None and self._settled() else None
                waiting: set[asyncio.Future[Any]] = {receiving, flushed}
                done, _ = await asyncio.wait(
                    waiting, timeout=quiet, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving in done:
                    raw, receiving = self._received(receiving), None
                    heard = self._read(raw)
                    if heard is not None:
                        yield heard
                elif not done:  # quiet since the flush: nothing was left to finalise
                    yield self._answer_flush()
        except _Closed:
            return
        finally:
            self._flushed = None
            if receiving is not None:
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)

    def _received(self, receiving: asyncio.Future[str | bytes]) -> str | bytes:
        try:
            return receiving.result()
        except websockets.exceptions.ConnectionClosedOK:
            raise _Closed from None
        except websockets.exceptions.ConnectionClosed as exc:
            raise self._closed(exc) from exc

    async def send_audio(self, pcm: bytes) -> None:
        """Binary PCM chunks (the stream keeps them within 50-1000 ms)."""
        await self._send(pcm)

    async def flush(self, sent_s: float) -> None:
        """``{"type": "ForceEndpoint"}``: end the current turn now."""
        self._flush_s = sent_s
        if self._flushed is not None and not self._flushed.done():
            self._flushed.set_result(None)
        await self._send(json.dumps({"type": "ForceEndpoint"}))

    async def keep_alive(self) -> None:
        """``{"type": "KeepAlive"}``."""
        await self._send(json.dumps({"type": "KeepAlive"}))

    async def close(self) -> None:
        """``{"type": "Terminate"}``, then close the socket."""
        ws = self._ws
        if ws is None:
            return
        try:
            await self._send(json.dumps({"type": "Terminate"}))
        finally:
            await ws.close()

    def _read(self, raw: str | bytes) -> Heard | None:
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise self.vendor.malformed() from exc
        if not isinstance(payload, Mapping):
            raise self.vendor.malformed()
        kind = payload.get("type")
        if kind == "Error" or (kind is None and "error" in payload):
            # Its text is AssemblyAI's own words: logged by nobody, shown to nobody.
            code = payload.get("error_code")
            raise self.vendor.reported(None if code is None else str(code))
        if kind != "Turn":
            return None  # Begin, SpeechStarted, Termination, Warning...
        return self._turn(payload)

    def _turn(self, payload: Mapping[str, Any]) -> Heard:
        try:
            turn = _Turn.model_validate(payload)
        except ValidationError as exc:
            raise self.vendor.malformed() from exc
        words = tuple(
            Word(word=w.text, start=w.start / 1000, end=w.end / 1000, confidence=w.confidence)
            for w in turn.words
        )
        scores = [w.confidence for w in turn.words if w.confidence is not None]
        final_until: float | None = None
        if not turn.end_of_turn:
            self._open_turn = turn.turn_order
            text = " ".join(w.text for w in turn.words) or turn.transcript
        else:
            text = turn.transcript
            if self._open_turn == turn.turn_order:
                self._open_turn = None
            formatted_next = self._format_turns and not turn.turn_is_formatted
            self._unformatted = turn.turn_order if formatted_next else None
            if self._flush_s is not None and self._settled():
                final_until = self._answer_flush()
        return Heard(
            key=turn.turn_order,
            text=text,
            final=turn.end_of_turn,
            words=words,
            confidence=sum(scores) / len(scores) if scores else None,
            language=turn.language_code,
            final_until_s=final_until,
        )

    def _settled(self) -> bool:
        return self._open_turn is None and self._unformatted is None

    def _answer_flush(self) -> float:
        flushed, self._flush_s = self._flush_s or 0.0, None
        return flushed

    async def _send(self, message: str | bytes) -> None:
        try:
            await self._require().send(message)
        except websockets.exceptions.ConnectionClosed as exc:
            raise self._closed(exc) from exc

    def _closed(self, exc: websockets.exceptions.ConnectionClosed) -> ParleyError:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code in _CLOSE_MEANINGS:
            return self.vendor.closed(code, _CLOSE_MEANINGS[code])
        if code in _AUTH_CLOSE:
            return self.vendor.refused_key(f"close code {code}")
        if code in _BUSY_CLOSE:
            return self.vendor.rate_limited(f"close code {code}")
        return self.vendor.connection_lost()

    def _require(self) -> ClientConnection:
        if self._ws is None:
            raise self.vendor.connection_lost()
        return self._ws


class _Closed(Exception):
    """AssemblyAI closed the connection cleanly."""


class AssemblyAiStreamingProvider:
    """AssemblyAI Universal-Streaming (English by default, multilingual for other languages)."""

    name = "assemblyai"
    pushes_partials = True

    def __init__(
        self, api_key: SecretStr, base_url: str | None, settings: CloudSttSettings
    ) -> None:
        self._vendor = Vendor(self.name, "AssemblyAI", VENDOR_KEY_ENV["assemblyai"], "STT")
        self._api_key = api_key
        self._origin = websocket_origin(base_url or DEFAULT_STREAMING_URL)
        self._settings = settings
        self._timing = LiveTiming(
            finalize_timeout_s=settings.stt_finalize_timeout_s,
            keepalive_s=settings.stt_keepalive_s,
            min_chunk_bytes=_MIN_CHUNK,
            max_chunk_bytes=_MAX_CHUNK,
        )

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> LiveStream | RefusedStream:
        """A new utterance on a new connection (opened in the background)."""
        english = language is not None and language.lower().startswith("en")
        chosen = model or self._settings.assemblyai_stt_model
        if not chosen:
            chosen = ENGLISH_MODEL if english else MULTILINGUAL_MODEL
        refused = _refusal(chosen, language)
        if refused is not None:
            return RefusedStream(refused)
        query = {
            "sample_rate": str(SAMPLE_RATE),
            "encoding": "pcm_s16le",
            "speech_model": chosen,
            "format_turns": "true" if self._settings.assemblyai_format_turns else "false",
        }
        if chosen == MULTILINGUAL_MODEL:
            query["language_detection"] = "true"
        wire = _AssemblyAiWire(
            self._vendor,
            f"{self._origin}/v3/ws?{urlencode(query)}",
            self._api_key,
            format_turns=self._settings.assemblyai_format_turns,
            connect_timeout_s=self._settings.stt_cloud_timeout_s,
            settle_s=self._settings.stt_settle_ms / 1000,
        )
        return LiveStream(wire, language, on_partial, self._timing)


def _refusal(model: str, language: str | None) -> ParleyError | None:
    """Why AssemblyAI's own streaming ``model`` cannot hear ``language`` (None: it can); a
    model named by the session or the settings otherwise is trusted with it."""
    if model not in (ENGLISH_MODEL, MULTILINGUAL_MODEL):
        return None
    if language is None:
        if model == ENGLISH_MODEL:
            return detection_refused("assemblyai", model, f"use {MULTILINGUAL_MODEL}")
        return None
    code = primary_language(language)
    if code not in ASSEMBLYAI_LANGUAGES:
        return language_refused("assemblyai", language, "choose stt_provider local or deepgram")
    if model == ENGLISH_MODEL and code != "en":
        return language_refused("assemblyai", language, f"use {MULTILINGUAL_MODEL}")
    return None
