"""The conversation tests share the root conftest's ``platform_url``."""

from __future__ import annotations

from bench.audio import silence, speak
from bench.call import Call

SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}


async def one_spoken_turn(platform_url: str, question: str = "What time is it?") -> str:
    """A scripted session that hears ``question`` and answers it to the end of its audio;
    returns the session id."""
    call = await Call.start(platform_url, **SCRIPTED)
    try:
        await call.say(await speak(question) + silence(1200), realtime=False)
        await call.wait_for("audio_end", within_s=30)
    finally:
        await call.close()
    return call.session_id
