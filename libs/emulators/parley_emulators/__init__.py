"""Emulators of the cloud providers Parley talks to, each speaking the provider's real wire
protocol (paths, status codes, headers, event names, close codes) on a local port.

One module per provider protocol. Each emulator is an ASGI app plus a record of what it saw
(requests, frames, when a connection closed), so tests assert on the wire, not on mocks of
Parley's own adapters; faults (401, 429 with retry-after, 5xx, malformed frames, a dropped
connection) are switched on per test.
"""
