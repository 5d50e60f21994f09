"""Parley's edge: REST + WebSocket for clients, the web UI, session lifecycle."""
