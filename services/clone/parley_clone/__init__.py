"""Parley clone service."""
