"""Reading the frames both providers send alike: JSON objects named by ``event``, whose
``media``, ``mark``, ``dtmf`` and ``stop`` have the same fields at Twilio and at Telnyx.
Each dialect adds how its ``start`` reads (and any event of its own)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_gateway.telephony.events import (
    CallerAudio,
    Keypress,
    MarkPlayed,
    PhoneEvent,
    StreamStarted,
    StreamStopped,
)

Frame = dict[str, Any]
Handler = Callable[[Frame], PhoneEvent | None]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MediaData(_Message):
    track: str = "inbound"
    payload: str


class Media(_Message):
    event: Literal["media"]
    media: MediaData


class DtmfData(_Message):
    digit: str = Field(pattern=r"^[0-9*#A-Da-d]$")


class Dtmf(_Message):
    event: Literal["dtmf"]
    dtmf: DtmfData


class MarkData(_Message):
    name: str


class Mark(_Message):
    event: Literal["mark"]
    mark: MarkData


class Stop(_Message):
    event: Literal["stop"]


def decode_payload(payload: str) -> bytes:
    """A media payload's bytes (ValueError when it is not base64)."""
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError("media payload is not base64") from exc


def encode_payload(audio: bytes) -> str:
    """Bytes as a media payload."""
    return base64.b64encode(audio).decode("ascii")


def _media(frame: Frame) -> PhoneEvent | None:
    media = Media.model_validate(frame).media
    # Only the caller's side: a stream of both tracks also carries what the phone plays.
    return CallerAudio(decode_payload(media.payload)) if media.track == "inbound" else None


def _stop(frame: Frame) -> PhoneEvent:
    Stop.model_validate(frame)
    return StreamStopped()


_COMMON: dict[str, Handler] = {
    "media": _media,
    "mark": lambda frame: MarkPlayed(Mark.model_validate(frame).mark.name),
    "dtmf": lambda frame: Keypress(Dtmf.model_validate(frame).dtmf.digit.upper()),
    "stop": _stop,
}


def parse_frame(
    text: str, start: Callable[[Frame], StreamStarted], own: Mapping[str, Handler] | None = None
) -> PhoneEvent | None:
    """The event of a provider's text frame: ``start`` reads its ``start``, ``own`` its other
    events; None for an event with nothing for the call (``connected``, or one newer than
    this code); ValueError for a frame that is not what its event says."""
    try:
        frame = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(frame, dict):
        raise ValueError("not a JSON object")
    event = frame.get("event")
    handler = {**_COMMON, **(own or {}), "start": start}.get(str(event))
    if handler is None:
        return None
    try:
        return handler(frame)
    except ValidationError as exc:
        raise ValueError(f"malformed {event!s:.20} message") from exc
