"""S2's own Python client (``VoiceChatAPI`` from S2's guide, copied unchanged into
``s2_seed_api.py``) against a secured Parley gateway, given only its base URL and a token:
voices listed, speech synthesised to a decodable file, speech transcribed by the local
Whisper, the chatbot's configuration read and updated, and a voice chat answered.

The client uses ``requests``, which blocks: each call runs in a thread so that the gateway,
served from this event loop, keeps serving."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.audio import spoken, word_error_rate
from conftest import SecuredPlatform
from parley_llm.providers.scripted import ScriptedLlmProvider

from . import s2_seed_api
from .s2_audio import played, recording

# The seed's code is untyped; typed code sees it as Any.
VoiceChatAPI: Any = s2_seed_api.VoiceChatAPI

QUESTION = "Please book a table for two people tomorrow evening"


def _wav_file(pcm: bytes, path: Path) -> str:
    path.write_bytes(recording(pcm, "wav", "pcm_s16le"))
    return str(path)


# The seed's voice_chat and speech_to_text open the upload and never close it.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_the_seeds_python_client_works_against_parley(
    secured_platform: SecuredPlatform, scripted_llm: ScriptedLlmProvider, tmp_path: Path
) -> None:
    user, chatbot = f"user-{uuid.uuid4().hex[:8]}", f"chatbot-{uuid.uuid4().hex[:8]}"
    api = VoiceChatAPI(secured_platform.url, secured_platform.token(user))

    listing = await asyncio.to_thread(api.get_available_voices)
    voices = [v["id"] for v in listing["voices"]]
    assert voices, listing
    voice = voices[0]

    out = tmp_path / "tts_output.mp3"
    written = await asyncio.to_thread(
        api.text_to_speech, "Hello, how are you today?", voice=voice, output_file=str(out)
    )
    assert written == str(out)
    speech = played(out.read_bytes())
    assert speech.container == "mp3"
    assert 0.8 < speech.seconds < 5.0  # five words of speech
    assert speech.rms > 300  # not silence

    question = _wav_file(spoken(QUESTION), tmp_path / "user_audio.wav")
    result = await asyncio.to_thread(api.speech_to_text, question, "en")
    assert word_error_rate(QUESTION, result["text"]) < 0.3, result["text"]
    assert 0.0 <= result["confidence"] <= 1.0

    fresh = await asyncio.to_thread(api.get_voice_config, chatbot)
    assert (fresh["chatbot_id"], fresh["audio_format"]) == (chatbot, "webm")
    config = {"tts_voice": voice, "stt_language": "en", "llm_provider": "scripted"}
    updated = await asyncio.to_thread(api.update_voice_config, chatbot, config)
    assert {k: updated[k] for k in config} == config
    assert await asyncio.to_thread(api.get_voice_config, chatbot) == updated

    # As in S2's guide: a chat with voice options (here the local voice) and use_rag.
    scripted_llm.reply = "A table for two is booked for tomorrow evening."
    answer = await asyncio.to_thread(
        api.voice_chat,
        chatbot_id=chatbot,
        audio_file_path=question,
        voice_config={"tts_voice": voice, "tts_speed": 1.2, "use_rag": True},
    )
    assert word_error_rate(QUESTION, answer["transcript"]) < 0.3, answer["transcript"]
    assert answer["response_text"] == scripted_llm.reply
    assert answer["audio_format"] == "mp3"
    spoken_answer = played(base64.b64decode(answer["audio_data"]))
    assert (spoken_answer.container, spoken_answer.rms > 300) == ("mp3", True)
    assert 1.0 < spoken_answer.seconds < 6.0
    assert answer["conversation_id"]
