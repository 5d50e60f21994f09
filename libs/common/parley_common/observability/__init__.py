"""Logging, metrics and the health endpoint."""
