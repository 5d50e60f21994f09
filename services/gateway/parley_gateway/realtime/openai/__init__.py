"""OpenAI's Realtime API (GA protocol) on ``WS /v1/realtime``, in front of Parley's pipeline.

An app written against OpenAI's Realtime API talks to Parley by changing its base URL and
using a Parley token as its key. The wire events are OpenAI's (``wire``), the session
options map to a Parley session (``options``), audio is converted at the edge (``codecs``,
``audio``), and the connection (``connection``) is the client side of the same
``SessionBridge`` every other socket uses: barge-in, what the user heard, pacing and latency
are the bridge's, translated into OpenAI's events (``conversation``).
"""
