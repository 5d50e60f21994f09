"""Parley tts service."""
