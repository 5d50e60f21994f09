"""The real-time path: a client's WebSocket bridged to the session's bus subjects."""
