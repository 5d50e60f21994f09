"""One emulator server per vendor, as a deployment sees it: every capability of the vendor
on one base URL (OpenAI's chat, transcription and speech under ``/v1``; Groq's chat and
transcription under ``/openai/v1``; Deepgram's listen and speak), each with its own record.

Point ``<VENDOR>_BASE_URL`` at one of these and the vendor's SDK cannot tell it from the
real service, except that answers are deterministic: the LLM says ``reply`` (or echoes the
question), the STT hears ``transcript``, the TTS speaks a tone as long as the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette

from parley_emulators import (
    anthropic_messages,
    deepgram_listen,
    deepgram_speak,
    elevenlabs,
    openai_chat,
    openai_speech,
    openai_transcribe,
)
from parley_emulators.base import EmulatorState, starlette_app
from parley_emulators.deepgram_listen import ListenState
from parley_emulators.dialogue import ToolPlans
from parley_emulators.elevenlabs import ElevenLabsState
from parley_emulators.spoken import SttEmulatorState

__all__ = ["VENDORS", "Anthropic", "Deepgram", "ElevenLabs", "Groq", "OpenAi", "Vendor"]

DEFAULT_KEY = "test-key"
DEFAULT_TRANSCRIPT = "What is the weather like in Paris today?"


@dataclass
class OpenAi:
    """``OPENAI_BASE_URL=<url>/v1``: chat completions, transcriptions and speech."""

    api_key: str = DEFAULT_KEY
    transcript: str = DEFAULT_TRANSCRIPT
    reply: str | None = None
    # Set before app(): the chat model calls this tool when a request offers it.
    tool_plan: ToolPlans = field(default=None, init=False)
    chat: EmulatorState = field(init=False)
    transcribe: SttEmulatorState = field(init=False)
    speech: EmulatorState = field(init=False)

    def __post_init__(self) -> None:
        self.chat = EmulatorState(api_key=self.api_key)
        self.transcribe = SttEmulatorState(api_key=self.api_key, transcript=self.transcript)
        self.speech = EmulatorState(api_key=self.api_key)

    def app(self) -> Starlette:
        """The server."""
        return starlette_app(
            [
                *openai_chat.routes(self.chat, reply=self.reply, tool_plan=self.tool_plan),
                *openai_transcribe.routes(self.transcribe),
                *openai_speech.routes(self.speech),
            ]
        )


@dataclass
class Groq:
    """``GROQ_BASE_URL=<url>``: chat completions and transcriptions under /openai/v1."""

    api_key: str = DEFAULT_KEY
    transcript: str = DEFAULT_TRANSCRIPT
    reply: str | None = None
    # Set before app(): the chat model calls this tool when a request offers it.
    tool_plan: ToolPlans = field(default=None, init=False)
    chat: EmulatorState = field(init=False)
    transcribe: SttEmulatorState = field(init=False)

    def __post_init__(self) -> None:
        self.chat = EmulatorState(api_key=self.api_key)
        self.transcribe = SttEmulatorState(api_key=self.api_key, transcript=self.transcript)

    def app(self) -> Starlette:
        """The server."""
        return starlette_app(
            [
                *openai_chat.routes(self.chat, reply=self.reply, tool_plan=self.tool_plan),
                *openai_transcribe.routes(self.transcribe),
            ]
        )


@dataclass
class Anthropic:
    """``ANTHROPIC_BASE_URL=<url>``: the Messages API."""

    api_key: str = DEFAULT_KEY
    reply: str | None = None
    # Set before app(): the chat model calls this tool when a request offers it.
    tool_plan: ToolPlans = field(default=None, init=False)
    messages: EmulatorState = field(init=False)

    def __post_init__(self) -> None:
        self.messages = EmulatorState(api_key=self.api_key)

    def app(self) -> Starlette:
        """The server."""
        return starlette_app(
            anthropic_messages.routes(self.messages, reply=self.reply, tool_plan=self.tool_plan)
        )


@dataclass
class Deepgram:
    """``DEEPGRAM_BASE_URL=<url>``: live and pre-recorded listen, Aura speak."""

    api_key: str = DEFAULT_KEY
    transcript: str = DEFAULT_TRANSCRIPT
    listen: ListenState = field(init=False)
    speak: EmulatorState = field(init=False)

    def __post_init__(self) -> None:
        self.listen = ListenState(api_key=self.api_key, transcript=self.transcript)
        self.speak = EmulatorState(api_key=self.api_key)

    def app(self) -> Starlette:
        """The server."""
        return starlette_app(
            [*deepgram_listen.routes(self.listen), *deepgram_speak.routes(self.speak)]
        )


@dataclass
class ElevenLabs:
    """``ELEVENLABS_BASE_URL=<url>``: speech (HTTP and stream-input), voices, models."""

    api_key: str = DEFAULT_KEY
    state: ElevenLabsState = field(init=False)

    def __post_init__(self) -> None:
        self.state = ElevenLabsState(api_key=self.api_key)

    def app(self) -> Starlette:
        """The server."""
        return elevenlabs.app(self.state)


Vendor = OpenAi | Groq | Anthropic | Deepgram | ElevenLabs
VENDORS: dict[str, type[Vendor]] = {
    "openai": OpenAi,
    "groq": Groq,
    "anthropic": Anthropic,
    "deepgram": Deepgram,
    "elevenlabs": ElevenLabs,
}
