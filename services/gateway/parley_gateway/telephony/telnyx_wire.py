"""Telnyx media streaming's WebSocket messages (TeXML ``<Stream bidirectionalMode="rtp">``).

From Telnyx: ``connected``, ``start`` (``stream_id``, ``call_control_id``,
``media_format`` PCMU or PCMA at 8000 Hz, the stream's custom parameters), ``media``
(base64 RTP payloads, 20 ms), ``dtmf``, ``mark`` (echoed when the audio before it has
played), ``error`` and ``stop``. To Telnyx: ``media``, ``mark`` and ``clear``; the stream
is the connection's, so they do not name it.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from parley_common.audio.g711 import G711Law
from parley_gateway.telephony.events import PHONE_RATE, PhoneEvent, StreamStarted
from parley_gateway.telephony.frames import Frame, MarkData, encode_payload, parse_frame

log = logging.getLogger(__name__)

PROVIDER = "telnyx"
LAWS: dict[str, G711Law] = {"PCMU": "ulaw", "PCMA": "alaw"}


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MediaFormat(_Message):
    encoding: str
    sample_rate: int
    channels: int = 1


class StartData(_Message):
    call_control_id: str
    media_format: MediaFormat
    custom_parameters: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("custom_parameters", "customParameters"),
    )


class Start(_Message):
    event: Literal["start"]
    stream_id: str
    start: StartData


class ErrorData(_Message):
    code: int | str | None = None
    title: str = ""


class Error(_Message):
    event: Literal["error"]
    payload: ErrorData = Field(default_factory=ErrorData)


class OutMedia(_Message):
    event: Literal["media"] = "media"
    media: dict[str, str]


class OutMark(_Message):
    event: Literal["mark"] = "mark"
    mark: MarkData


class OutClear(_Message):
    event: Literal["clear"] = "clear"


def _started(frame: Frame) -> StreamStarted:
    message = Start.model_validate(frame)
    fmt = message.start.media_format
    law = LAWS.get(fmt.encoding.upper())
    if law is None or fmt.sample_rate != PHONE_RATE or fmt.channels != 1:
        raise ValueError(
            f"unsupported media format {fmt.encoding!s:.40}/{fmt.sample_rate}/{fmt.channels}"
            " (stream PCMU or PCMA at 8000 Hz)"
        )
    return StreamStarted(
        stream_id=message.stream_id,
        call_id=message.start.call_control_id,
        law=law,
        parameters=dict(message.start.custom_parameters),
    )


def _error(frame: Frame) -> None:
    # Telnyx refused something sent (a frame it could not play, say): the call goes on.
    error = Error.model_validate(frame).payload
    log.warning("telnyx stream error", extra={"code": error.code, "title": error.title[:100]})


class TelnyxDialect:
    """Telnyx media streaming (a ``Dialect``)."""

    provider = PROVIDER

    def parse(self, text: str) -> PhoneEvent | None:
        """The event of a frame from Telnyx (see ``Dialect.parse``)."""
        return parse_frame(text, _started, {"error": _error})

    def media(self, stream_id: str, audio: bytes) -> str:
        """An outbound ``media`` message (G.711 audio in the stream's codec)."""
        return OutMedia(media={"payload": encode_payload(audio)}).model_dump_json()

    def mark(self, stream_id: str, name: str) -> str:
        """An outbound ``mark`` message."""
        return OutMark(mark=MarkData(name=name)).model_dump_json()

    def clear(self, stream_id: str) -> str:
        """A ``clear`` message."""
        return OutClear().model_dump_json()
