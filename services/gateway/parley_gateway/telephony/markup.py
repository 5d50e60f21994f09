"""The answer to a voice webhook: TwiML (Twilio) or TeXML (Telnyx, which reads the same
markup) that connects the call to a bidirectional media stream.

``<Connect><Stream>`` holds the call on the stream until either side closes it; each
``<Parameter>`` arrives in the stream's ``start`` message (Twilio does not allow a query
string in the stream URL, so the stream token travels as a parameter too).
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree import ElementTree

XML_MEDIA_TYPE = "application/xml"


def markup_responses(dialect: str) -> dict[int | str, dict[str, object]]:
    """The OpenAPI description of a voice webhook's answer in ``dialect`` (TwiML, TeXML)."""
    return {200: {"content": {XML_MEDIA_TYPE: {}}, "description": dialect}}


def connect_stream(
    url: str, parameters: Mapping[str, str], attributes: Mapping[str, str] | None = None
) -> str:
    """``<Response><Connect><Stream url=…>`` with one ``<Parameter>`` per item (and extra
    ``<Stream>`` attributes), as an XML document."""
    response = ElementTree.Element("Response")
    connect = ElementTree.SubElement(response, "Connect")
    stream = ElementTree.SubElement(connect, "Stream", {"url": url, **(attributes or {})})
    for name, value in parameters.items():
        ElementTree.SubElement(stream, "Parameter", {"name": name, "value": value})
    body = ElementTree.tostring(response, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>{body}'
