"""Deepgram live transcription (``/v1/listen`` WebSocket) through ``deepgram-sdk``.

One connection per utterance, opened when the user starts speaking. Interim results are
pushed as partials; ``finish`` sends ``Finalize`` so the final arrives in one round trip (a
``from_finalize`` result, or final results covering all the audio sent); ``KeepAlive`` goes out
while the user is silent; ``aclose`` sends ``CloseStream`` and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import websockets
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from parley_common.contracts.bus import Word
from parley_common.errors import ParleyError
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_stt.providers.base import SAMPLE_RATE, PartialSink
from parley_stt.providers.languages import RefusedStream, detection_refused
from parley_stt.providers.live import Heard, LiveStream, LiveTiming, websocket_origin
from parley_stt.settings import CloudSttSettings

with warnings.catch_warnings():
    # The SDK imports websockets' legacy client (and its exception names), which websockets
    # marks deprecated; its listen client is imported here, not lazily mid-call, for that.
    warnings.simplefilter("ignore", DeprecationWarning)
    import deepgram.listen.v1.client  # noqa: F401
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
    from deepgram.core.api_error import ApiError
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient

__all__ = ["DEFAULT_BASE_URL", "DeepgramLiveProvider"]

DEFAULT_BASE_URL = "https://api.deepgram.com"
# Close codes Deepgram documents for /v1/listen, and what they mean for the person reading.
_CLOSE_MEANINGS = {
    1008: "it could not decode the audio",
    1011: "no audio for too long, or a server error",
}
# What opening the socket raises: ApiError for a refused upgrade (the SDK redacts the key
# from the headers it carries, which are our request's), the socket's own errors otherwise.
_CONNECT_ERRORS = SdkErrors(
    status=(ApiError,),
    timeouts=(TimeoutError,),
    connection=(OSError, websockets.exceptions.WebSocketException),
)
# Models that take language=multi (detect and switch languages); others default to English.
_MULTILINGUAL = ("nova-3", "nova-2")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Word(_Reply):
    word: str
    start: float
    end: float
    confidence: float | None = None
    punctuated_word: str | None = None


class _Alternative(_Reply):
    transcript: str
    confidence: float | None = None
    words: list[_Word] = Field(default_factory=list)
    languages: list[str] | None = None


class _Channel(_Reply):
    alternatives: list[_Alternative] = Field(min_length=1)


class _Results(_Reply):
    start: float
    duration: float
    is_final: bool = False
    from_finalize: bool = False
    channel: _Channel


class _DeepgramWire:
    """One ``/v1/listen`` connection: the SDK's socket, read as Parley's :class:`Heard`."""

    def __init__(
        self,
        client: AsyncDeepgramClient,
        vendor: Vendor,
        params: dict[str, str],
        connect_timeout_s: float,
    ) -> None:
        self.vendor = vendor
        self._client = client
        self._params = params
        self._connect_timeout_s = connect_timeout_s
        self._exit = contextlib.AsyncExitStack()
        self._socket: AsyncV1SocketClient | None = None
        self._next_key = 0  # the key the next final result gets (interims share it)
        self._flushes: deque[float] = deque()

    async def connect(self) -> None:
        """Open the WebSocket (the SDK's ``listen.v1.connect``)."""
        with _CONNECT_ERRORS.translated(
            self.vendor,
            model=self._params["model"],
            timeout_s=self._connect_timeout_s,
            waiting_for="a connection",
        ):
            async with asyncio.timeout(self._connect_timeout_s):
                self._socket = await self._exit.enter_async_context(
                    self._client.listen.v1.connect(**self._params)
                )

    async def messages(self) -> AsyncIterator[Heard | float]:
        """Results as :class:`Heard`; other message types carry nothing for the transcript."""
        socket = self._require()
        while True:
            try:
                message = await socket.recv()
            except websockets.exceptions.ConnectionClosedOK:
                return
            except websockets.exceptions.ConnectionClosed as exc:
                raise self._closed(exc) from exc
            except ValueError as exc:  # a text frame that is not JSON
                raise self.vendor.malformed() from exc
            heard = self._read(_payload(message))
            if heard is not None:
                yield heard

    async def send_audio(self, pcm: bytes) -> None:
        """Binary audio frames."""
        await self._send(self._require().send_media(pcm))

    async def flush(self, sent_s: float) -> None:
        """``{"type": "Finalize"}``: finalise everything sent so far now."""
        self._flushes.append(sent_s)
        await self._send(self._require().send_finalize())

    async def keep_alive(self) -> None:
        """``{"type": "KeepAlive"}``: Deepgram closes a stream silent for 10 s."""
        await self._send(self._require().send_keep_alive())

    async def close(self) -> None:
        """``{"type": "CloseStream"}``, then close the socket."""
        try:
            if self._socket is not None:
                await self._send(self._socket.send_close_stream())
        finally:
            await self._exit.aclose()

    def _read(self, payload: Mapping[str, Any]) -> Heard | None:
        kind = payload.get("type")
        if kind == "Error":
            variant = payload.get("variant")  # its "message" is Deepgram's words: not shown
            raise self.vendor.reported(variant if isinstance(variant, str) else None)
        if kind != "Results":
            return None  # Metadata, SpeechStarted, UtteranceEnd
        try:
            results = _Results.model_validate(payload)
        except ValidationError as exc:
            raise self.vendor.malformed() from exc
        best = results.channel.alternatives[0]
        key = self._next_key
        final_until: float | None = None
        if results.is_final:
            self._next_key += 1
            final_until = results.start + results.duration
            if results.from_finalize and self._flushes:
                # The answer to the oldest Finalize: everything sent before it is final.
                final_until = max(final_until, self._flushes.popleft())
        return Heard(
            key=key,
            text=best.transcript,
            final=results.is_final,
            words=tuple(
                Word(
                    word=w.punctuated_word or w.word,
                    start=w.start,
                    end=w.end,
                    confidence=w.confidence,
                )
                for w in best.words
            ),
            confidence=best.confidence,
            language=best.languages[0] if best.languages else None,
            final_until_s=final_until,
        )

    async def _send(self, sending: Any) -> None:
        try:
            await sending
        except websockets.exceptions.ConnectionClosed as exc:
            raise self._closed(exc) from exc

    def _closed(self, exc: websockets.exceptions.ConnectionClosed) -> ParleyError:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code in _CLOSE_MEANINGS:
            return self.vendor.closed(code, _CLOSE_MEANINGS[code])
        return self.vendor.connection_lost()

    def _require(self) -> AsyncV1SocketClient:
        if self._socket is None:
            raise self.vendor.connection_lost()
        return self._socket


def _payload(message: object) -> Mapping[str, Any]:
    """The JSON object of a message the SDK already parsed (into one of its models, or left
    as a dict when it did not recognise the type)."""
    if isinstance(message, Mapping):
        return message
    if isinstance(message, BaseModel):
        return message.model_dump(mode="json", warnings=False)
    return {"type": "binary"}  # Deepgram never sends binary on /v1/listen: ignored


class DeepgramLiveProvider:
    """Deepgram streaming STT (``nova-3`` by default)."""

    name = "deepgram"
    pushes_partials = True

    def __init__(
        self, api_key: SecretStr, base_url: str | None, settings: CloudSttSettings
    ) -> None:
        self._vendor = Vendor(self.name, "Deepgram", VENDOR_KEY_ENV["deepgram"], "STT")
        self._settings = settings
        http = (base_url or DEFAULT_BASE_URL).rstrip("/")
        ws = websocket_origin(http)
        self._client = AsyncDeepgramClient(
            api_key=api_key.get_secret_value(),
            environment=DeepgramClientEnvironment(
                base=http, production=ws, agent=ws, agent_rest=http
            ),
        )
        self._timing = LiveTiming(
            finalize_timeout_s=settings.stt_finalize_timeout_s,
            keepalive_s=settings.stt_keepalive_s,
        )

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> LiveStream | RefusedStream:
        """A new utterance on a new connection (opened in the background)."""
        chosen = model or self._settings.deepgram_stt_model
        params = {
            "model": chosen,
            "encoding": "linear16",
            "sample_rate": str(SAMPLE_RATE),
            "channels": "1",
            "interim_results": "true",
            "punctuate": "true",
            "smart_format": "true",
            "endpointing": str(self._settings.deepgram_endpointing_ms),
        }
        if language:
            params["language"] = language
        elif chosen.startswith(_MULTILINGUAL):
            params["language"] = "multi"
        else:  # it would hear English whatever is spoken
            return RefusedStream(detection_refused(self.name, chosen, "use nova-3 or nova-2"))
        wire = _DeepgramWire(self._client, self._vendor, params, self._settings.stt_cloud_timeout_s)
        return LiveStream(wire, language, on_partial, self._timing)
