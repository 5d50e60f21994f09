"""Parley analytics: durable events from JetStream into PostgreSQL."""
