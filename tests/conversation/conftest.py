"""The conversation tests share the root conftest's ``platform_url``, and these helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_common.providers import ProviderRegistry
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_stt.providers.registry import REGISTRY as STT_PROVIDERS
from parley_tts.providers.registry import REGISTRY as TTS_PROVIDERS

EVERY_STAGE: tuple[ProviderRegistry[Any], ...] = (STT_PROVIDERS, LLM_PROVIDERS, TTS_PROVIDERS)

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


@pytest.fixture(scope="module")
def monkeymodule() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for module-scoped fixtures (emulators shared by a module's tests)."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@contextlib.asynccontextmanager
async def vendors_at(
    patch: pytest.MonkeyPatch,
    key: str,
    urls: Mapping[str, str],
    registries: Sequence[ProviderRegistry[Any]] = EVERY_STAGE,
    *,
    prepare: bool = True,
) -> AsyncIterator[None]:
    """The cloud adapters pointed at emulators: ``{VENDOR}_API_KEY`` and ``_BASE_URL`` for
    each vendor of ``urls`` (its name → base URL). Adapters are built once per process from
    the environment, so those of ``registries`` are rebuilt for these emulators (``prepare``:
    at once, as a worker does at start-up), and again after, for whatever runs next."""
    for name, url in urls.items():
        patch.setenv(f"{name.upper()}_API_KEY", key)
        patch.setenv(f"{name.upper()}_BASE_URL", url)
    for registry in registries:
        await registry.aclose()
        if prepare:
            await registry.prepare()
    try:
        yield
    finally:
        for registry in registries:
            await registry.aclose()
