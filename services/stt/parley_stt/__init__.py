"""Parley stt service."""
