"""`parley up` pointed at a server that speaks OpenAI's public protocol: with
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` set, a spoken session on S1's stack names
(``whisper``/``openai`` STT, ``openai`` LLM and TTS) works unchanged. The server here is the
OpenAI emulator, run as its own process (``python -m parley_emulators openai``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.audio import silence, speak
from bench.call import Call
from parley_emulators.speech import MS_PER_CHAR
from parley_launcher.embedded.process import free_port

from .harness import Running, start, stop, wait

pytestmark = pytest.mark.e2e
QUESTION = "What is the weather like in Paris today?"
REPLY = "It is sunny in Paris. Take a hat."
SERVICES = ("gateway", "stt", "llm", "tts", "clone", "analytics")


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "parley_emulators", "openai", "--port", str(port)]
    command += ["--api-key", "sk-e2e", "--transcript", QUESTION, "--reply", REPLY]
    proc = subprocess.Popen(command)
    try:
        wait(
            lambda: httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1) is not None,
            30,
            "the OpenAI emulator",
        )
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory, openai_server: str) -> Iterator[Running]:
    env = {"OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": openai_server}
    running = start(tmp_path_factory.mktemp("cloud-up"), SERVICES, env=env)
    try:
        yield running
    finally:
        stop(running, remove=True)


@pytest.mark.parametrize("stt", ["whisper", "openai"])
def test_a_spoken_session_on_openai_works_unchanged(parley: Running, stt: str) -> None:
    def usable() -> dict[str, set[str]]:
        body = httpx.get(
            f"{parley.url}/api/v1/providers", headers=parley.headers, timeout=10
        ).json()
        return {kind: {p["name"] for p in body[kind] if p["available"]} for kind in body}

    # Workers answer provider queries once their adapters are built, just after start-up.
    wanted = {"stt": {"whisper", "openai"}, "llm": {"openai"}, "tts": {"openai"}}
    wait(lambda: all(wanted[k] <= usable()[k] for k in wanted), 90, "the workers' providers")
    asyncio.run(_converse(parley.url, parley.token, stt))


async def _converse(url: str, token: str, stt: str) -> None:
    config = {"stt_provider": stt, "llm_provider": "openai", "tts_provider": "openai"}
    call = await Call.start(url, token=token, interrupt_sensitivity="high", **config)
    try:
        await call.say(await speak(QUESTION) + silence(700), realtime=False)
        final = await call.wait_for("transcript", lambda e: e["data"]["is_final"], within_s=30)
        assert final["data"]["text"] == QUESTION
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
        assert done["data"]["text"] == REPLY
        await call.wait_for("audio_end", within_s=30)
        audio = b"".join(r.audio or b"" for r in call.audio())
        # The emulator speaks a tone MS_PER_CHAR long per character, at 24 kHz PCM16.
        expected = len("".join(REPLY.split(". "))) * MS_PER_CHAR * 48
        assert abs(len(audio) - expected) < 0.2 * expected, (len(audio), expected)
        assert max(audio[1::2]) > 0  # not silence
    finally:
        await call.close()


def test_the_key_never_reaches_a_client_or_a_log(parley: Running) -> None:
    body = httpx.get(f"{parley.url}/api/v1/providers", headers=parley.headers, timeout=10).text
    assert "sk-e2e" not in body
    for log in (Path(parley.data_dir) / "logs").glob("*.log"):
        assert "sk-e2e" not in log.read_text(errors="replace"), log.name
