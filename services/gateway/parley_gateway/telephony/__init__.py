"""Phone calls: Twilio Media Streams and Telnyx media streaming into Parley sessions.

A provider calls a voice webhook (``POST /telephony/<provider>/voice``), signed with its
key (``signatures``); the answer (``markup``) connects the call to a WebSocket stream
(``WS /telephony/<provider>/stream``) with a one-call token (``stream_tokens``). Each stream
is one session (``calls``) whose client side is the call (``connection``): G.711 at 8 kHz
in and out (``parley_common.audio.g711``), "heard" from the provider's echoed marks
(``marked_playout``), ``clear`` on a barge-in, keypad digits as typed messages, and echo
suppression (``echo``). The providers' messages are in ``twilio_wire`` / ``telnyx_wire``.
"""
