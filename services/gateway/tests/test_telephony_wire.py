"""The providers' media-stream messages as their documents show them, read into Parley's
events and written back; the answer markup."""

from __future__ import annotations

import base64
import json
from xml.etree import ElementTree

import pytest

from parley_gateway.telephony.events import (
    CallerAudio,
    Keypress,
    MarkPlayed,
    StreamStarted,
    StreamStopped,
)
from parley_gateway.telephony.markup import connect_stream
from parley_gateway.telephony.telnyx_wire import TelnyxDialect
from parley_gateway.telephony.twilio_wire import TwilioDialect

AUDIO = bytes(range(160))
PAYLOAD = base64.b64encode(AUDIO).decode()
TWILIO_START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC123",
        "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
        "callSid": "CA123",
        "tracks": ["inbound"],
        "customParameters": {"chatbot_id": "support", "token": "t"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
    "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
}
TELNYX_START = {
    "event": "start",
    "sequence_number": "1",
    "start": {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "from": "+13122010094",
        "to": "+13122123456",
        "media_format": {"encoding": "PCMA", "sample_rate": 8000, "channels": 1},
        "custom_parameters": {"chatbot_id": "support", "token": "t"},
    },
    "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
}


def _media(track: str = "inbound", **ids: str) -> str:
    media = {"track": track, "chunk": "2", "timestamp": "5", "payload": PAYLOAD}
    return json.dumps({"event": "media", "sequence_number": "4", "media": media, **ids})


def test_twilio_messages() -> None:
    twilio = TwilioDialect()
    assert twilio.parse('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') is None
    assert twilio.parse(json.dumps(TWILIO_START)) == StreamStarted(
        stream_id="MZ18ad3ab5a668481ce02b83e7395059f0",
        call_id="CA123",
        law="ulaw",
        parameters={"chatbot_id": "support", "token": "t"},
    )
    assert twilio.parse(_media(streamSid="MZ1")) == CallerAudio(AUDIO)
    assert twilio.parse(_media("outbound", streamSid="MZ1")) is None
    mark = {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1", "mark": {"name": "7"}}
    assert twilio.parse(json.dumps(mark)) == MarkPlayed("7")
    dtmf = {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "#"}}
    assert twilio.parse(json.dumps(dtmf)) == Keypress("#")
    stop = {"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA1"}}
    assert twilio.parse(json.dumps(stop)) == StreamStopped()
    assert twilio.parse('{"event": "something-new"}') is None


def test_telnyx_messages() -> None:
    telnyx = TelnyxDialect()
    assert telnyx.parse('{"event": "connected", "version": "1.0.0"}') is None
    started = telnyx.parse(json.dumps(TELNYX_START))
    assert started == StreamStarted(
        stream_id="32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        call_id="v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
        law="alaw",
        parameters={"chatbot_id": "support", "token": "t"},
    )
    assert telnyx.parse(_media(stream_id="s")) == CallerAudio(AUDIO)
    mark = {"event": "mark", "sequence_number": "5", "stream_id": "s", "mark": {"name": "x"}}
    assert telnyx.parse(json.dumps(mark)) == MarkPlayed("x")
    dtmf = {"event": "dtmf", "stream_id": "s", "occurred_at": "now", "dtmf": {"digit": "5"}}
    assert telnyx.parse(json.dumps(dtmf)) == Keypress("5")
    error = {"event": "error", "payload": {"code": 100002, "title": "Unknown error"}}
    assert telnyx.parse(json.dumps(error)) is None
    assert telnyx.parse('{"event": "stop", "stop": {"call_control_id": "v3:x"}}') == StreamStopped()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        json.dumps({"event": "media", "media": {"payload": "%%% not base64"}}),
        json.dumps({"event": "media", "media": {}}),
        json.dumps({"event": "mark"}),
        json.dumps({"event": "dtmf", "dtmf": {"digit": "12"}}),
        json.dumps({"event": "start", "start": {}}),
    ],
)
def test_malformed_frames_are_told_apart(frame: str) -> None:
    for dialect in (TwilioDialect(), TelnyxDialect()):
        with pytest.raises(ValueError):  # noqa: PT011 - every malformed frame is a ValueError
            dialect.parse(frame)


def test_only_g711_at_8_khz_starts_a_stream() -> None:
    wideband = json.loads(json.dumps(TWILIO_START))
    wideband["start"]["mediaFormat"]["sampleRate"] = 16000
    with pytest.raises(ValueError, match="unsupported media format"):
        TwilioDialect().parse(json.dumps(wideband))
    opus = json.loads(json.dumps(TELNYX_START))
    opus["start"]["media_format"]["encoding"] = "OPUS"
    with pytest.raises(ValueError, match="PCMU or PCMA"):
        TelnyxDialect().parse(json.dumps(opus))


def test_what_goes_back() -> None:
    twilio, telnyx = TwilioDialect(), TelnyxDialect()
    assert json.loads(twilio.media("MZ1", AUDIO)) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": PAYLOAD},
    }
    assert json.loads(twilio.mark("MZ1", "3")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "3"},
    }
    assert json.loads(twilio.clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    assert json.loads(telnyx.media("s", AUDIO)) == {"event": "media", "media": {"payload": PAYLOAD}}
    assert json.loads(telnyx.mark("s", "3")) == {"event": "mark", "mark": {"name": "3"}}
    assert json.loads(telnyx.clear("s")) == {"event": "clear"}


def test_the_answer_markup() -> None:
    markup = connect_stream(
        "wss://voice.example.com/telephony/telnyx/stream",
        {"system_prompt": 'Say "hi" & <smile>', "token": "abc"},
        {"bidirectionalMode": "rtp"},
    )
    assert markup.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    stream = ElementTree.fromstring(markup).find("./Connect/Stream")
    assert stream is not None
    assert stream.attrib == {
        "url": "wss://voice.example.com/telephony/telnyx/stream",
        "bidirectionalMode": "rtp",
    }
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    assert parameters == {"system_prompt": 'Say "hi" & <smile>', "token": "abc"}
