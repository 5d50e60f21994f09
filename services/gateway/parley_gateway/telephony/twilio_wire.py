"""Twilio Media Streams' WebSocket messages (``<Connect><Stream>``, bidirectional).

From Twilio: ``connected``, ``start`` (``streamSid``, ``callSid``, ``customParameters``,
``mediaFormat`` audio/x-mulaw 8000 mono), ``media`` (base64 μ-law, 20 ms), ``dtmf``,
``mark`` (echoed when the audio before it has played) and ``stop``. To Twilio: ``media``,
``mark`` and ``clear``, each naming the ``streamSid``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from parley_gateway.telephony.events import PHONE_RATE, PhoneEvent, StreamStarted
from parley_gateway.telephony.frames import Frame, MarkData, encode_payload, parse_frame

PROVIDER = "twilio"
MULAW = "audio/x-mulaw"


class _Message(BaseModel):
    # Twilio's names are camelCase; fields Parley does not use are ignored.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class MediaFormat(_Message):
    encoding: str
    sample_rate: int
    channels: int = 1


class StartData(_Message):
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: list[str] = Field(default_factory=list)
    custom_parameters: dict[str, str] = Field(default_factory=dict)
    media_format: MediaFormat


class Start(_Message):
    event: Literal["start"]
    stream_sid: str = ""
    start: StartData


class OutMedia(_Message):
    event: Literal["media"] = "media"
    stream_sid: str
    media: dict[str, str]


class OutMark(_Message):
    event: Literal["mark"] = "mark"
    stream_sid: str
    mark: MarkData


class OutClear(_Message):
    event: Literal["clear"] = "clear"
    stream_sid: str


def _started(frame: Frame) -> StreamStarted:
    start = Start.model_validate(frame).start
    fmt = start.media_format
    if fmt.encoding != MULAW or fmt.sample_rate != PHONE_RATE or fmt.channels != 1:
        raise ValueError(
            f"unsupported media format {fmt.encoding!s:.40}/{fmt.sample_rate}/{fmt.channels}"
        )
    return StreamStarted(
        stream_id=start.stream_sid,
        call_id=start.call_sid,
        law="ulaw",
        parameters=dict(start.custom_parameters),
    )


class TwilioDialect:
    """Twilio Media Streams (a ``Dialect``)."""

    provider = PROVIDER

    def parse(self, text: str) -> PhoneEvent | None:
        """The event of a frame from Twilio (see ``Dialect.parse``)."""
        return parse_frame(text, _started)

    def media(self, stream_id: str, audio: bytes) -> str:
        """An outbound ``media`` message (μ-law audio)."""
        out = OutMedia(stream_sid=stream_id, media={"payload": encode_payload(audio)})
        return out.model_dump_json(by_alias=True)

    def mark(self, stream_id: str, name: str) -> str:
        """An outbound ``mark`` message."""
        out = OutMark(stream_sid=stream_id, mark=MarkData(name=name))
        return out.model_dump_json(by_alias=True)

    def clear(self, stream_id: str) -> str:
        """A ``clear`` message."""
        return OutClear(stream_sid=stream_id).model_dump_json(by_alias=True)
