"""ElevenLabs' input-streaming WebSocket (``/v1/text-to-speech/{voice}/stream-input``): the
answer's deltas go in as the LLM writes them, audio with character alignment comes back.

The SDK's realtime helper is synchronous and forces ``wss://`` (it cannot reach a local
server), so this speaks the documented protocol with the ``websockets`` client: a first
message ``{"text": " "}`` (with voice settings), then text that ends at word boundaries,
``flush: true`` at sentence ends, and ``{"text": ""}`` to finish; the server answers
``{"audio": <base64 PCM>, "alignment": {...}}`` messages and ``{"isFinal": true}``. It has
no "clear" message: an interruption closes the socket, which stops generation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from parley_common.errors import ParleyError
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_tts.providers._input_stream import StreamState, TextLedger, http_to_ws
from parley_tts.providers.base import SpokenChunk

__all__ = ["VENDOR", "ElevenLabsInputStream", "connect_input_stream"]

VENDOR = Vendor("elevenlabs", "ElevenLabs", VENDOR_KEY_ENV["elevenlabs"], "TTS")
CLOSE_TIMEOUT_S = 1.0  # closing must not hold up an interruption
# A refused upgrade carries ElevenLabs' answer (status, headers, JSON body with its kind).
_CONNECT_ERRORS = SdkErrors(
    status=(InvalidStatus,), timeouts=(TimeoutError,), connection=(OSError, InvalidHandshake)
)


async def connect_input_stream(
    *,
    base_url: str,
    api_key: SecretStr,
    voice: str,
    model: str,
    sample_rate: int,
    speed: float | None,
    timeout_s: float,
) -> ElevenLabsInputStream:
    """Open the socket and send the first message; errors are Parley errors."""
    query = urlencode({"model_id": model, "output_format": f"pcm_{sample_rate}"})
    url = f"{http_to_ws(base_url.rstrip('/'))}/v1/text-to-speech/{quote(voice, safe='')}"
    url += f"/stream-input?{query}"
    with _CONNECT_ERRORS.translated(
        VENDOR, model=model, timeout_s=timeout_s, waiting_for="a connection"
    ):
        async with asyncio.timeout(timeout_s):
            socket = await connect(
                url,
                additional_headers={"xi-api-key": api_key.get_secret_value()},
                close_timeout=CLOSE_TIMEOUT_S,
                open_timeout=None,
            )
    stream = ElevenLabsInputStream(socket, sample_rate, timeout_s)
    first: dict[str, Any] = {"text": " "}
    if speed is not None:
        first["voice_settings"] = {"speed": speed}
    await stream._send_json(first)
    return stream


class ElevenLabsInputStream:
    """One turn on ElevenLabs' input-streaming socket (see ``TtsInputStream``)."""

    def __init__(self, socket: ClientConnection, sample_rate: int, timeout_s: float) -> None:
        self.sample_rate = sample_rate
        self.state = StreamState.OPEN
        self._socket = socket
        self._timeout_s = timeout_s
        self._ledger = TextLedger()
        self._pending = ""  # the unfinished last word, held until it is complete

    async def send(self, text: str) -> None:
        """Queue ``text``; whole words go out now, a trailing partial word waits."""
        self.state.require_open("send to")
        self._pending += text
        cut = max(self._pending.rfind(" "), self._pending.rfind("\n")) + 1
        if cut:
            await self._send_text(self._pending[:cut])
            self._pending = self._pending[cut:]

    async def flush(self) -> None:
        """Generate audio for everything sent so far."""
        self.state.require_open("flush")
        if self._pending:
            await self._send_text(self._pending, flush=True)
            self._pending = ""
        else:
            # An empty text would end the input; a lone space is not reply text.
            await self._send_json({"text": " ", "flush": True})

    async def finish(self) -> None:
        """Send the rest and the end-of-input message."""
        self.state.require_open("finish")
        if self._pending:
            await self._send_text(self._pending)
            self._pending = ""
        self.state = StreamState.FINISHING
        await self._send_json({"text": ""})

    async def clear(self) -> None:
        """ElevenLabs has no clear message: stop by closing the socket."""
        if not self.state.ended:
            self.state = StreamState.CLEARED
        await self._socket.close()

    async def aclose(self) -> None:
        """Close the socket (idempotent)."""
        self.state = StreamState.CLOSED
        await self._socket.close()

    def __aiter__(self) -> AsyncIterator[SpokenChunk]:
        return self._audio()

    async def _audio(self) -> AsyncIterator[SpokenChunk]:
        while not self.state.ended:
            message = await self._receive()
            if message is None or self.state.ended:
                return
            error = message.get("error")
            if error is not None:  # its "message" is ElevenLabs' words: not shown
                raise VENDOR.reported(error if isinstance(error, str) else None)
            audio = message.get("audio")
            if audio:
                pcm = _decode(audio)
                chars = _aligned_chars(message)
                if chars is None:
                    start, end = self._ledger.span_of_unconfirmed()
                else:
                    start, end = self._ledger.advance(chars)
                yield SpokenChunk(pcm, start, end)
            if message.get("isFinal"):
                self.state = StreamState.DONE
                return

    async def _receive(self) -> dict[str, Any] | None:
        """The next JSON message, or None once the socket closed cleanly or was cleared."""
        try:
            if self.state is StreamState.FINISHING:
                # Once the answer is complete, audio must keep coming.
                async with asyncio.timeout(self._timeout_s):
                    raw = await self._socket.recv()
            else:
                raw = await self._socket.recv()
        except TimeoutError as exc:
            raise VENDOR.timed_out(self._timeout_s, what="audio") from exc
        except ConnectionClosed as exc:
            if self.state.ended:
                return None
            raise _closed_error(exc) from exc
        if isinstance(raw, bytes):
            raise VENDOR.malformed()
        try:
            message = json.loads(raw)
        except ValueError as exc:
            raise VENDOR.malformed() from exc
        if not isinstance(message, dict):
            raise VENDOR.malformed()
        return message

    async def _send_text(self, text: str, *, flush: bool = False) -> None:
        self._ledger.add(text)
        message: dict[str, Any] = {"text": text}
        if flush:
            message["flush"] = True
        await self._send_json(message)

    async def _send_json(self, message: Mapping[str, Any]) -> None:
        try:
            await self._socket.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise _closed_error(exc) from exc


def _closed_error(exc: ConnectionClosed) -> ParleyError:
    close = exc.rcvd
    if close is None:
        return VENDOR.connection_lost()
    # ElevenLabs closes with 1008 (policy) and a reason naming the problem, e.g. a quota.
    reason = close.reason.lower()
    if "quota" in reason:
        return VENDOR.quota_exceeded(f"close code {close.code}")
    if "api key" in reason or "api_key" in reason or "unauthorized" in reason:
        return VENDOR.refused_key(f"close code {close.code}")
    return VENDOR.connection_lost()


def _decode(audio: object) -> bytes:
    if not isinstance(audio, str):
        raise VENDOR.malformed()
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VENDOR.malformed() from exc


def _aligned_chars(message: Mapping[str, Any]) -> int | None:
    # "alignment" is over the text as sent; "normalizedAlignment" over the normalised text
    # ("12" -> "twelve"), a worse measure of reply characters, so only the fallback.
    for key in ("alignment", "normalizedAlignment"):
        alignment = message.get(key)
        if isinstance(alignment, Mapping) and isinstance(alignment.get("chars"), list):
            return len(alignment["chars"])
    return None
