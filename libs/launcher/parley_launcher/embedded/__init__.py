"""Embedded infrastructure: a NATS server and a PostgreSQL server from PyPI wheels."""
