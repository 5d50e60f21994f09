"""Deepgram Aura's WebSocket (``/v1/speak``) through the SDK's ``speak.v1.connect``: one
socket per turn, ``Speak`` messages as the answer is written, ``Flush`` at sentence ends
(answered by ``Flushed`` once that text's audio is all sent), ``Clear`` on an interruption
(answered by ``Cleared``), ``Close`` at the end. Audio arrives as binary linear16 frames.

The audio before each ``Flushed`` speaks exactly the text of that flush, which is how each
chunk's text span is known without alignment data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

with warnings.catch_warnings():
    # deepgram-sdk 7 imports websockets' legacy client, deprecated since websockets 14; the
    # modules are imported here, once, so the SDK's lazy imports find them loaded.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import deepgram.speak.v1.client  # noqa: F401  # loaded now for the reason above
    from deepgram.core.api_error import ApiError
    from deepgram.speak.v1.socket_client import AsyncV1SocketClient
    from deepgram.speak.v1.types.speak_v1text import SpeakV1Text

from parley_common.errors import ParleyError
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_tts.providers._input_stream import StreamState, TextLedger
from parley_tts.providers.base import SpokenChunk

__all__ = ["CONNECT_ERRORS", "VENDOR", "AuraInputStream"]

log = logging.getLogger(__name__)

VENDOR = Vendor("deepgram", "Deepgram", VENDOR_KEY_ENV["deepgram"], "TTS")
CLOSE_TIMEOUT_S = 1.0

# What opening the socket raises: ApiError for a refused handshake (its text holds the
# request's headers: never shown), the socket's own errors otherwise.
CONNECT_ERRORS = SdkErrors(
    status=(ApiError,),
    timeouts=(TimeoutError,),
    connection=(OSError, InvalidHandshake, ConnectionClosed),
)


class AuraInputStream:
    """One turn on Aura's socket (see ``TtsInputStream``); the connection is entered by
    ``DeepgramAuraProvider.open_stream`` and handed over in ``exits``."""

    def __init__(
        self,
        socket: AsyncV1SocketClient,
        exits: contextlib.AsyncExitStack,
        sample_rate: int,
        timeout_s: float,
    ) -> None:
        self.sample_rate = sample_rate
        self.state = StreamState.OPEN
        self._socket = socket
        self._exits = exits
        self._timeout_s = timeout_s
        self._ledger = TextLedger()

    async def send(self, text: str) -> None:
        """Queue ``text`` for synthesis."""
        self.state.require_open("send to")
        if not text:
            return
        self._ledger.add(text)
        await self._call(self._socket.send_text(SpeakV1Text(type="Speak", text=text)))

    async def flush(self) -> None:
        """Speak everything sent so far."""
        self.state.require_open("flush")
        if self._ledger.flush():
            await self._call(self._socket.send_flush())

    async def finish(self) -> None:
        """Flush the rest; the iteration ends at its ``Flushed``."""
        self.state.require_open("finish")
        await self.flush()
        self.state = StreamState.FINISHING

    async def clear(self) -> None:
        """Interrupt: ``Clear`` drops Aura's queued text and audio."""
        if self.state.ended:
            return
        self.state = StreamState.CLEARED
        with contextlib.suppress(ParleyError):  # already gone is as good as cleared
            await self._call(self._socket.send_clear())

    async def aclose(self) -> None:
        """Send ``Close`` and close the socket (idempotent)."""
        if self.state is StreamState.CLOSED:
            return
        self.state = StreamState.CLOSED
        with contextlib.suppress(ParleyError):
            await self._call(self._socket.send_close())
        # The SDK's legacy client waits up to 10 s for the close handshake; an interruption
        # must not, and the client aborts the connection itself after that.
        with contextlib.suppress(ConnectionClosed, OSError, ApiError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._exits.aclose()

    def __aiter__(self) -> AsyncIterator[SpokenChunk]:
        return self._audio()

    async def _audio(self) -> AsyncIterator[SpokenChunk]:
        while not self._finished():
            message = await self._receive()
            if self.state.ended:
                return
            if isinstance(message, bytes):
                if message:
                    start, end = self._ledger.span_of_unconfirmed()
                    yield SpokenChunk(message, start, end)
                continue
            kind = _message_type(message)
            if kind == "Flushed":
                self._ledger.flushed()
            elif kind == "Warning":
                log.warning("Deepgram warning", extra={"provider": VENDOR.name})
            elif kind is None:
                raise VENDOR.malformed()
            elif kind == "Error":
                raise VENDOR.reported(None)  # its fields are Deepgram's words: not shown
            # Metadata, Cleared and message types newer than this adapter need nothing.
        if self.state is StreamState.FINISHING:
            self.state = StreamState.DONE

    def _finished(self) -> bool:
        if self.state.ended:
            return True
        return self.state is StreamState.FINISHING and self._ledger.pending_flushes == 0

    async def _receive(self) -> object:
        try:
            if self.state is StreamState.FINISHING:
                async with asyncio.timeout(self._timeout_s):
                    return await self._socket.recv()
            return await self._socket.recv()
        except TimeoutError as exc:
            raise VENDOR.timed_out(self._timeout_s, what="audio") from exc
        except ConnectionClosed as exc:
            if self.state.ended:
                return b""
            raise VENDOR.connection_lost() from exc
        except ValueError as exc:  # a text frame that is not JSON
            raise VENDOR.malformed() from exc

    async def _call(self, sending: Any) -> None:
        try:
            await sending
        except (ConnectionClosed, OSError) as exc:
            raise VENDOR.connection_lost() from exc


def _message_type(message: object) -> str | None:
    # The SDK parses known messages into models and returns unknown ones as dicts.
    kind = message.get("type") if isinstance(message, dict) else getattr(message, "type", None)
    return kind if isinstance(kind, str) else None
