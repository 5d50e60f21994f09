"""Parley's shared library: contracts, bus, settings, logging, metrics, database, runtime."""
