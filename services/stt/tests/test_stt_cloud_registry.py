"""The cloud STT providers in the registry: unavailable with the reason while their key is
missing, available with it, and pointed by ``<VENDOR>_BASE_URL`` at any server speaking the
vendor's protocol (here the emulators)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from parley_common.contracts.session import SttProvider as SttName
from parley_common.errors import ProviderUnavailableError
from parley_emulators import assemblyai_streaming, deepgram_listen, openai_transcribe
from parley_emulators.base import running
from parley_emulators.spoken import BYTES_PER_SECOND, SttEmulatorState
from parley_stt.providers.registry import REGISTRY

KEY_ENV = {
    SttName.OPENAI: "OPENAI_API_KEY",
    SttName.WHISPER: "OPENAI_API_KEY",
    SttName.GROQ: "GROQ_API_KEY",
    SttName.DEEPGRAM: "DEEPGRAM_API_KEY",
    SttName.ASSEMBLYAI: "ASSEMBLYAI_API_KEY",
}


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Built adapters are kept per process; these tests must not leave theirs for others.
    monkeypatch.setattr(REGISTRY, "_built", {})
    for variable in (
        *KEY_ENV.values(),
        *(v.replace("API_KEY", "BASE_URL") for v in KEY_ENV.values()),
    ):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(("name", "variable"), KEY_ENV.items())
def test_unavailable_without_a_key_with_the_reason(name: SttName, variable: str) -> None:
    status = REGISTRY.status(name)

    assert status.available is False
    assert status.reason == f"no API key: set {variable}"
    with pytest.raises(ProviderUnavailableError, match=variable):
        REGISTRY.get(name)


@pytest.mark.parametrize(("name", "variable"), KEY_ENV.items())
def test_available_with_a_key(
    monkeypatch: pytest.MonkeyPatch, name: SttName, variable: str
) -> None:
    monkeypatch.setenv(variable, "some-key")

    status = REGISTRY.status(name)

    assert status.available is True
    assert REGISTRY.get(name).name == name.value
    assert "some-key" not in repr(status)


def _emulator(name: SttName) -> Starlette:
    """The emulator of ``name``'s protocol, whose audio says "Turn the lights on"."""
    key, said = "emulated-key", "Turn the lights on"
    if name is SttName.DEEPGRAM:
        return deepgram_listen.app(deepgram_listen.ListenState(api_key=key, transcript=said))
    state = SttEmulatorState(api_key=key, transcript=said)
    if name is SttName.ASSEMBLYAI:
        return assemblyai_streaming.app(state)
    return openai_transcribe.app(state)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        (SttName.WHISPER, "/v1"),
        (SttName.GROQ, ""),
        (SttName.DEEPGRAM, ""),
        (SttName.ASSEMBLYAI, ""),
    ],
)
async def test_base_url_points_the_provider_at_another_server(
    monkeypatch: pytest.MonkeyPatch, name: SttName, path: str
) -> None:
    variable = KEY_ENV[name]
    monkeypatch.setenv(variable, "emulated-key")
    async with running(_emulator(name)) as url:
        monkeypatch.setenv(variable.replace("API_KEY", "BASE_URL"), url + path)
        provider = REGISTRY.get(name)
        stream = await provider.open("en")
        await stream.feed(bytes(BYTES_PER_SECOND))
        result = await stream.finish()
        await stream.aclose()
        closing = getattr(provider, "aclose", None)
        if closing is not None:
            await closing()

    assert result.text.lower() == "turn the lights on"
