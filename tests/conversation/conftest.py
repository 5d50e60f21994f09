"""The conversation tests share the root conftest's ``platform_url``."""

from __future__ import annotations

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}
