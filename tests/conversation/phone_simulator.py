"""A phone provider calling Parley, for the phone-call tests: Twilio Media Streams or Telnyx
media streaming, speaking the messages their documents describe.

It signs the voice webhook as the provider does (Twilio: HMAC-SHA1 of the URL and the form
with the auth token, as the ``twilio`` SDK computes it; Telnyx: Ed25519 over
``{timestamp}|{body}``), reads the markup the webhook answers, opens the stream it names and
sends ``connected`` then ``start`` with the markup's parameters. Then, in real time, every
20 ms: it sends the caller's microphone (speech queued by ``say``, silence otherwise, plus
an optional echo of what it plays) as G.711 at 8 kHz, and plays 20 ms of the audio Parley
sent; a mark is echoed once the audio sent before it has been played, as the providers do,
and ``clear`` drops what is not played yet (and echoes the pending marks, as Twilio does).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import numpy as np
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection

from parley_common.audio.g711 import G711Law, decode_g711, encode_g711
from parley_common.audio.resampling import StreamResampler

Provider = Literal["twilio", "telnyx"]
RATE = 8000
TICK_MS = 20
TICK_BYTES = RATE * 2 * TICK_MS // 1000  # PCM16 at 8 kHz
_TELNYX_ENCODINGS: dict[G711Law, str] = {"ulaw": "PCMU", "alaw": "PCMA"}


@dataclass(frozen=True)
class Carrier:
    """The provider accounts a gateway trusts: Twilio's auth token, Telnyx's signing key."""

    base_url: str
    twilio_auth_token: str
    telnyx_key: Ed25519PrivateKey


@dataclass(frozen=True)
class Answer:
    """What a voice webhook answered: the stream to open and its parameters."""

    stream_url: str
    parameters: dict[str, str]
    attributes: dict[str, str]


def webhook_form(call_sid: str) -> dict[str, str]:
    """The form a provider posts for an incoming call (the fields both send)."""
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + uuid.uuid4().hex,
        "From": "+15005550006",
        "To": "+15005550001",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def twilio_signature(auth_token: str, url: str, form: dict[str, str]) -> str:
    """``X-Twilio-Signature`` of a POST of ``form`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, form))


def telnyx_headers(key: Ed25519PrivateKey, body: bytes, at: float | None = None) -> dict[str, str]:
    """``telnyx-signature-ed25519`` and ``telnyx-timestamp`` of ``body`` sent at ``at``."""
    timestamp = str(int(time.time() if at is None else at))
    signature = key.sign(timestamp.encode() + b"|" + body)
    return {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": timestamp,
    }


async def post_webhook(
    carrier: Carrier,
    provider: Provider,
    call_sid: str,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The provider's voice webhook for call ``call_sid``, signed unless ``headers`` says
    otherwise (given headers replace the signature's)."""
    path = f"/telephony/{provider}/voice" + (f"?{urlencode(query)}" if query else "")
    form = webhook_form(call_sid)
    body = urlencode(form).encode()
    if provider == "twilio":
        signed = {
            "X-Twilio-Signature": twilio_signature(
                carrier.twilio_auth_token, carrier.base_url + path, form
            )
        }
    else:
        signed = telnyx_headers(carrier.telnyx_key, body)
    sent = {"Content-Type": "application/x-www-form-urlencoded", **signed, **(headers or {})}
    async with httpx.AsyncClient(base_url=carrier.base_url, timeout=10) as client:
        return await client.post(path, content=body, headers=sent)


def read_answer(markup: str) -> Answer:
    """The ``<Connect><Stream>`` of a webhook's TwiML/TeXML."""
    root = ElementTree.fromstring(markup)
    assert root.tag == "Response", markup
    stream = root.find("./Connect/Stream")
    assert stream is not None, markup
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    attributes = {k: v for k, v in stream.attrib.items() if k != "url"}
    return Answer(stream.attrib["url"], parameters, attributes)


def new_call_sid(provider: Provider) -> str:
    """A call id in the provider's format."""
    return "CA" + uuid.uuid4().hex if provider == "twilio" else "v3:" + uuid.uuid4().hex


def _ms(pcm_bytes: int) -> float:
    return pcm_bytes / (RATE * 2) * 1000


def _level(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


@dataclass(frozen=True)
class Cleared:
    """A ``clear`` the phone received: when, and how far it had played by then (in all,
    and as far as the last mark it echoed)."""

    at: float
    played_ms: float
    marked_ms: float


@dataclass
class PhoneCall:
    """A call's media stream, driven in real time (see the module's docstring)."""

    provider: Provider
    ws: ClientConnection
    law: G711Law
    call_id: str
    echo_gain: float = 0.0
    echo_marks_on_clear: bool = True
    playout_delay_ms: float = 0.0
    stream_id: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)
    played: bytearray = field(default_factory=bytearray)  # every sample played, 8 kHz
    # (name, where the audio before it ends, in ms of all audio played)
    marks_echoed: list[tuple[str, float]] = field(default_factory=list)
    clears: list[Cleared] = field(default_factory=list)
    media_at: list[float] = field(default_factory=list)  # when each media frame came
    wire_errors: list[str] = field(default_factory=list)
    _seq: int = 0
    _chunk: int = 0
    _mic: bytearray = field(default_factory=bytearray)
    _arriving: deque[tuple[float, bytes | str]] = field(default_factory=deque)  # (ready at, …)
    _buffer: deque[bytes | str] = field(default_factory=deque)  # audio and marks to play
    _due_marks: list[tuple[str, float]] = field(default_factory=list)  # played this tick
    _last_played: bytes = b""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def dial(
        cls,
        carrier: Carrier,
        provider: Provider,
        query: dict[str, str] | None = None,
        **options: Any,
    ) -> PhoneCall:
        """Ring Parley: the webhook, then the stream its answer names."""
        call_sid = new_call_sid(provider)
        response = await post_webhook(carrier, provider, call_sid, query)
        assert response.status_code == 200, response.text
        answer = read_answer(response.text)
        # Telnyx names its stream's call by a call control id; Twilio by the webhook's.
        stream_call = call_sid if provider == "twilio" else new_call_sid(provider)
        return await cls.open(
            answer.stream_url, answer.parameters, provider, stream_call, **options
        )

    @classmethod
    async def open(
        cls,
        url: str,
        parameters: dict[str, str],
        provider: Provider,
        call_id: str,
        *,
        law: G711Law = "ulaw",
        echo_gain: float = 0.0,
        echo_marks_on_clear: bool = True,
        playout_delay_ms: float = 0.0,
    ) -> PhoneCall:
        """Open a stream and start it with ``parameters``, as the provider does. What Parley
        sends is playable ``playout_delay_ms`` after it arrives (the way to the handset)."""
        ws = await websockets.connect(url, max_size=2**20)
        call = cls(provider, ws, law, call_id, echo_gain, echo_marks_on_clear, playout_delay_ms)
        await call._send(call._connected())
        await call._send(call._start(parameters))
        call._tasks = [asyncio.create_task(call._read()), asyncio.create_task(call._tick())]
        return call

    # -- the caller ------------------------------------------------------------------------
    async def say(self, pcm16k: bytes) -> None:
        """Speak PCM16 16 kHz audio into the call, in real time; returns when all is sent."""
        resampler = StreamResampler(16000, RATE)
        self._mic.extend(resampler.process(pcm16k) + resampler.flush())
        async with asyncio.timeout(len(self._mic) / (RATE * 2) + 10):
            while self._mic:
                await self._wait()

    async def press(self, digits: str) -> None:
        """Press keys on the keypad."""
        for digit in digits:
            await self._send(self._dtmf(digit))

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(self._stop())
        await self.close()

    async def close(self) -> None:
        """Stop the simulation and close the socket."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ws.close()

    async def closed_with(self, within_s: float = 10.0) -> int | None:
        """The close code Parley closed the stream with."""
        async with asyncio.timeout(within_s):
            await self.ws.wait_closed()
        return self.ws.close_code

    # -- what was played ---------------------------------------------------------------------
    @property
    def played_ms(self) -> float:
        """How much of Parley's audio the phone has played."""
        return _ms(len(self.played))

    @property
    def heard_ms(self) -> float:
        """Played audio as far as the last mark echoed: what the marks told Parley."""
        return self.marks_echoed[-1][1] if self.marks_echoed else 0.0

    def level(self, start_ms: float = 0.0) -> float:
        """RMS level of the audio played from ``start_ms``."""
        return _level(bytes(self.played[int(start_ms * RATE * 2 / 1000) // 2 * 2 :]))

    async def until(self, check: Any, within_s: float = 20.0) -> None:
        """Wait until ``check()`` holds."""
        async with asyncio.timeout(within_s):
            while not check():
                await self._wait()

    async def _wait(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- real time -----------------------------------------------------------------------------
    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self._play()
            await self._speak()
            self._changed.set()
            next_at += TICK_MS / 1000
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _play(self) -> None:
        due, self._due_marks = self._due_marks, []
        for name, at_ms in due:  # the audio before them finished playing with the last tick
            await self._echo(name, at_ms)
        now = time.perf_counter()
        while self._arriving and self._arriving[0][0] <= now:
            self._buffer.append(self._arriving.popleft()[1])
        chunk = bytearray()
        while self._buffer and (len(chunk) < TICK_BYTES or isinstance(self._buffer[0], str)):
            head = self._buffer.popleft()
            if isinstance(head, str):
                at_ms = _ms(len(self.played) + len(chunk))
                if chunk:  # its audio ends within this tick: echoed when the tick is over
                    self._due_marks.append((head, at_ms))
                else:  # its audio was over before this tick
                    await self._echo(head, at_ms)
                continue
            take = head[: TICK_BYTES - len(chunk)]
            chunk.extend(take)
            if len(take) < len(head):
                self._buffer.appendleft(head[len(take) :])
        self.played.extend(chunk)
        self._last_played = bytes(chunk)

    async def _echo(self, name: str, at_ms: float) -> None:
        self.marks_echoed.append((name, at_ms))
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(self._mark(name))

    async def _speak(self) -> None:
        frame = bytes(self._mic[:TICK_BYTES])
        del self._mic[:TICK_BYTES]
        samples = np.zeros(TICK_BYTES // 2)
        samples[: len(frame) // 2] = np.frombuffer(frame, dtype="<i2")
        if self.echo_gain and self._last_played:
            played = np.frombuffer(self._last_played, dtype="<i2")
            samples[: len(played)] += self.echo_gain * played
        pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(self._media(encode_g711(pcm, self.law)))

    async def _read(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                self.wire_errors.append("binary frame")
                continue
            await self._received(json.loads(message))
            self._changed.set()

    async def _received(self, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        if self.provider == "twilio" and frame.get("streamSid") != self.stream_id:
            self.wire_errors.append(f"{event} for stream {frame.get('streamSid')}")
        if event == "media":
            self.media_at.append(time.perf_counter())
            audio = decode_g711(base64.b64decode(frame["media"]["payload"]), self.law)
            self._arrived(audio)
        elif event == "mark":
            self._arrived(str(frame["mark"]["name"]))
        elif event == "clear":
            self.clears.append(Cleared(time.perf_counter(), self.played_ms, self.heard_ms))
            held = [*self._buffer, *(item for _, item in self._arriving)]
            pending = [*(name for name, _ in self._due_marks)]
            pending += [item for item in held if isinstance(item, str)]
            self._buffer.clear()
            self._arriving.clear()
            self._due_marks.clear()
            if self.echo_marks_on_clear:  # Twilio answers a clear with the marks it held
                for name in pending:
                    await self._send(self._mark(name))
        else:
            self.wire_errors.append(f"unexpected {event!r}")

    def _arrived(self, item: bytes | str) -> None:
        self._arriving.append((time.perf_counter() + self.playout_delay_ms / 1000, item))

    # -- the provider's messages -------------------------------------------------------------
    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    def _numbered(self, message: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        if self.provider == "twilio":
            return {**message, "sequenceNumber": str(self._seq), "streamSid": self.stream_id}
        return {**message, "sequence_number": str(self._seq), "stream_id": self.stream_id}

    def _connected(self) -> dict[str, Any]:
        if self.provider == "twilio":
            return {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return {"event": "connected", "version": "1.0.0"}

    def _start(self, parameters: dict[str, str]) -> dict[str, Any]:
        start: dict[str, Any]
        if self.provider == "twilio":
            start = {
                "accountSid": "AC" + uuid.uuid4().hex,
                "streamSid": self.stream_id,
                "callSid": self.call_id,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                "customParameters": parameters,
            }
        else:
            start = {
                "user_id": str(uuid.uuid4()),
                "call_control_id": self.call_id,
                "client_state": None,
                "media_format": {
                    "encoding": _TELNYX_ENCODINGS[self.law],
                    "sample_rate": RATE,
                    "channels": 1,
                },
                "custom_parameters": parameters,
            }
        return self._numbered({"event": "start", "start": start})

    def _media(self, payload: bytes) -> dict[str, Any]:
        self._chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self._chunk),
            "timestamp": str(self._chunk * TICK_MS),
            "payload": base64.b64encode(payload).decode(),
        }
        return self._numbered({"event": "media", "media": media})

    def _mark(self, name: str) -> dict[str, Any]:
        return self._numbered({"event": "mark", "mark": {"name": name}})

    def _dtmf(self, digit: str) -> dict[str, Any]:
        dtmf = {"track": "inbound_track", "digit": digit}
        return self._numbered({"event": "dtmf", "dtmf": dtmf})

    def _stop(self) -> dict[str, Any]:
        if self.provider == "twilio":
            stop = {"accountSid": "AC0", "callSid": self.call_id}
        else:
            stop = {"user_id": "u", "call_control_id": self.call_id}
        return self._numbered({"event": "stop", "stop": stop})
