"""Chooses a session's STT adapter by name; one shared instance per process and name."""

from __future__ import annotations

from parley_common.contracts.session import SttProvider as SttName
from parley_common.errors import ProviderUnavailableError
from parley_common.providers import ProviderRegistry, api_key, base_url
from parley_stt.providers.base import SttProvider
from parley_stt.settings import CloudSttSettings

REGISTRY: ProviderRegistry[SttProvider] = ProviderRegistry("STT", SttName)


@REGISTRY.register(SttName.LOCAL)
def _local() -> SttProvider:
    try:
        from parley_stt.providers.local_whisper import LocalWhisperProvider
    except ImportError as exc:  # the [local] extra is not installed
        raise ProviderUnavailableError(
            "not installed: local STT needs pip install 'parley-stt[local]'"
        ) from exc
    return LocalWhisperProvider()


@REGISTRY.register(SttName.SCRIPTED)
def _scripted() -> SttProvider:
    from parley_stt.providers.scripted import ScriptedSttProvider

    return ScriptedSttProvider()


def _openai(name: SttName) -> SttProvider:
    key = api_key("openai")  # first: without a key the reason is the key, not an import
    from parley_stt.providers.openai_stt import OpenAiSttProvider

    return OpenAiSttProvider(name, key, base_url("openai"), CloudSttSettings())


@REGISTRY.register(SttName.OPENAI)
def _openai_named() -> SttProvider:
    return _openai(SttName.OPENAI)


@REGISTRY.register(SttName.WHISPER)
def _whisper() -> SttProvider:
    # S1's name for OpenAI's hosted Whisper: the same adapter, reported under its own name.
    return _openai(SttName.WHISPER)


@REGISTRY.register(SttName.GROQ)
def _groq() -> SttProvider:
    key = api_key("groq")
    from parley_stt.providers.groq_stt import GroqSttProvider

    return GroqSttProvider(key, base_url("groq"), CloudSttSettings())


@REGISTRY.register(SttName.DEEPGRAM)
def _deepgram() -> SttProvider:
    key = api_key("deepgram")
    from parley_stt.providers.deepgram_live import DeepgramLiveProvider

    return DeepgramLiveProvider(key, base_url("deepgram"), CloudSttSettings())


@REGISTRY.register(SttName.ASSEMBLYAI)
def _assemblyai() -> SttProvider:
    key = api_key("assemblyai")
    from parley_stt.providers.assemblyai_streaming import AssemblyAiStreamingProvider

    return AssemblyAiStreamingProvider(key, base_url("assemblyai"), CloudSttSettings())


def get_provider(name: SttName) -> SttProvider:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
