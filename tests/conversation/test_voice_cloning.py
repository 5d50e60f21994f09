"""Voice cloning end to end, through a gateway that requires tokens: S1's
``POST /api/voice/clone`` with three generated samples, the clone service cloning them on the
ElevenLabs emulator (through the official SDK), the voice ``ready`` and offered in its
owner's ElevenLabs voices list, a spoken session with it whose audio is the clone's (the
emulator's clones speak at their samples' pitch), and another user who cannot see, use or
delete it. Bad samples are refused with a clear 4xx and nothing reaches the provider."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from bench.call import Call
from conftest import SecuredPlatform
from parley_clone.providers.registry import REGISTRY as CLONE_PROVIDERS
from parley_clone.testing import clone_worker, voice_sample
from parley_common.audio import encode_pcm
from parley_common.contracts.jobs import PROVIDER_VOICE_PREFIX
from parley_common.providers import ProviderRegistry
from parley_common.testing import serving
from parley_common.tokens import AuthSettings, mint_token, new_secret
from parley_emulators.base import running
from parley_emulators.cloning import pcm_pitch
from parley_emulators.vendors import ElevenLabs
from parley_gateway.app import create_app
from parley_gateway.limits.rules import Rate
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_tts.providers.registry import REGISTRY as TTS_PROVIDERS
from tests.conversation.conftest import vendors_at

KEY = "test-key"
PITCH_HZ = 220.0  # the samples' voice; the emulator's other voices speak at 440 Hz
REPLY = "Hello there, this is your own cloned voice speaking to you now."
SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted"}


@dataclass
class Cloning:
    platform: SecuredPlatform
    elevenlabs: ElevenLabs
    pool: asyncpg.Pool

    def client(self, user: str | None) -> httpx.AsyncClient:
        headers = self.platform.headers(user) if user else {}
        return httpx.AsyncClient(base_url=self.platform.url, headers=headers, timeout=60)

    def clone_requests(self) -> int:
        return sum(1 for r in self.elevenlabs.state.requests if r.path == "/v1/voices/add")

    async def rows_of(self, user: str) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM custom_voices WHERE user_id = $1", user
        )
        return count


@pytest.fixture(scope="module")
async def cloning(
    secured_platform: SecuredPlatform,
    nats_url: str,
    pool: asyncpg.Pool,
    monkeymodule: pytest.MonkeyPatch,
) -> AsyncIterator[Cloning]:
    vendor = ElevenLabs(api_key=KEY)
    async with running(vendor.app()) as url:
        registries: list[ProviderRegistry[Any]] = [TTS_PROVIDERS, CLONE_PROVIDERS]
        async with (
            vendors_at(monkeymodule, KEY, {"elevenlabs": url}, registries, prepare=False),
            clone_worker(nats_url, pool),
        ):
            yield Cloning(secured_platform, vendor, pool)


def _form(samples: list[tuple[str, bytes, str]], name: str = "My Custom Voice") -> dict[str, Any]:
    return {
        "data": {"name": name, "description": "A friendly voice", "provider": "elevenlabs"},
        "files": [("samples", sample) for sample in samples],
    }


async def _until_ready(client: httpx.AsyncClient, voice_id: str) -> dict[str, Any]:
    for _ in range(100):
        voice: dict[str, Any] = (await client.get(f"/api/v1/voices/custom/{voice_id}")).json()
        if voice["status"] != "processing":
            return voice
        await asyncio.sleep(0.1)
    raise AssertionError(f"voice {voice_id} is still processing")


@contextlib.asynccontextmanager
async def _session(cloning: Cloning, user: str, voice: str) -> AsyncIterator[Call]:
    call = await Call.start(
        cloning.platform.url,
        token=cloning.platform.token(user),
        tts_provider="elevenlabs",
        voice=voice,
        **SCRIPTED,
    )
    try:
        yield call
    finally:
        await call.close()


async def test_a_voice_cloned_from_three_samples_speaks_for_its_owner_only(
    cloning: Cloning, scripted_llm: ScriptedLlmProvider
) -> None:
    samples = [
        ("intro.wav", voice_sample(PITCH_HZ, 12, "wav"), "audio/wav"),
        ("reading.mp3", voice_sample(PITCH_HZ, 14, "mp3"), "audio/mpeg"),
        ("story.flac", voice_sample(PITCH_HZ, 16, "flac"), "audio/flac"),
    ]
    async with cloning.client("alice") as alice, cloning.client("bob") as bob:
        answer = await alice.post("/api/voice/clone", **_form(samples))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["success"] is True
        voice = body["voice"]
        assert voice["userId"] == "alice"
        assert (voice["name"], voice["description"]) == ("My Custom Voice", "A friendly voice")
        assert (voice["provider"], voice["sampleCount"]) == ("elevenlabs", 3)
        assert voice["totalDurationSeconds"] == pytest.approx(42, abs=0.5)
        assert voice["status"] in ("processing", "ready")
        # Three samples of under a minute: cloned, with S1's advice.
        assert any("10 or more samples" in w for w in voice["warnings"])
        assert any("shorter than a minute" in w for w in voice["warnings"])
        voice_id = voice["id"]
        ready = await _until_ready(alice, voice_id)
        assert ready["status"] == "ready", ready

        # What reached ElevenLabs: the samples converted to MP3, named by Parley, not the user.
        added = cloning.elevenlabs.state.last("/v1/voices/add")
        assert added.body["name"] == PROVIDER_VOICE_PREFIX + voice_id
        assert [f["filename"] for f in added.body["files"]] == [
            "sample-01.mp3",
            "sample-02.mp3",
            "sample-03.mp3",
        ]
        assert {f["content_type"] for f in added.body["files"]} == {"audio/mpeg"}
        provider_voice = added.query["voice_id"]

        # Offered in its owner's ElevenLabs list, marked custom; never the provider's entry.
        mine = (await alice.get("/api/v1/voices", params={"provider": "elevenlabs"})).json()
        assert mine["voices"][0] == {
            "id": voice_id,
            "name": "My Custom Voice",
            "language": None,
            "gender": None,
            "description": "A friendly voice",
            "custom": True,
        }
        theirs = (await bob.get("/api/voice/voices/elevenlabs")).json()["voices"]
        for listing in (mine["voices"], theirs):
            assert not [v for v in listing if v["name"].startswith(PROVIDER_VOICE_PREFIX)]
            assert provider_voice not in {v["id"] for v in listing}
        assert not [v for v in theirs if v["custom"]]
        assert voice_id not in {v["id"] for v in theirs}

        # Another user can neither see it nor use it, by either id.
        assert (await bob.get(f"/api/v1/voices/custom/{voice_id}")).status_code == 404
        assert (await bob.get("/api/v1/voices/custom")).json() == {"voices": []}
        refused = await bob.post(
            "/api/v1/sessions", json={"tts_provider": "elevenlabs", "voice": voice_id, **SCRIPTED}
        )
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "voice_not_found"
        raw = await bob.post(
            "/api/v1/sessions",
            json={"tts_provider": "elevenlabs", "voice": provider_voice, **SCRIPTED},
        )
        assert raw.status_code == 422, raw.text
        assert (await bob.delete(f"/api/v1/voices/custom/{voice_id}")).status_code == 404
        wrong_provider = await alice.post(
            "/api/v1/sessions", json={"tts_provider": "local", "voice": voice_id, **SCRIPTED}
        )
        assert wrong_provider.json()["error"]["code"] == "voice_provider_mismatch"

        # Its owner talks with it: the audio is the clone's, synthesised for its voice id.
        scripted_llm.reply = REPLY
        async with _session(cloning, "alice", voice_id) as call:
            await call.send_json({"type": "text_message", "text": "Say something."})
            start = await call.wait_for("audio_start", within_s=30)
            await call.wait_for("audio_end", within_s=30)
            pcm = b"".join(r.audio or b"" for r in call.audio(start["data"]["turn_id"]))
        assert len(pcm) > 24_000  # more than half a second at 24 kHz
        assert pcm_pitch(pcm, 24_000) == pytest.approx(PITCH_HZ, rel=0.05)
        spoken = cloning.elevenlabs.state.last("/stream-input")
        assert spoken.path == f"/v1/text-to-speech/{provider_voice}/stream-input"

        # Its owner deletes it: gone at ElevenLabs and here.
        assert (await alice.delete(f"/api/v1/voices/custom/{voice_id}")).status_code == 204
        assert cloning.elevenlabs.state.voice(provider_voice) is None
        assert (await alice.get(f"/api/v1/voices/custom/{voice_id}")).status_code == 404
        listed = (await alice.get("/api/v1/voices", params={"provider": "elevenlabs"})).json()
        assert voice_id not in {v["id"] for v in listed["voices"]}


async def test_a_refused_clone_is_failed_with_the_providers_reason(cloning: Cloning) -> None:
    slots = cloning.elevenlabs.state.clones.limit
    cloning.elevenlabs.state.clones.limit = 0
    try:
        async with cloning.client("carol") as carol:
            sample = [("me.wav", voice_sample(PITCH_HZ, 8, "wav"), "audio/wav")]
            answer = await carol.post("/api/voice/clone", **_form(sample))
            assert answer.status_code == 200, answer.text
            failed = await _until_ready(carol, answer.json()["voice"]["id"])
            assert failed["status"] == "failed"
            assert "no voice slot left" in failed["error"]
            session = await carol.post(
                "/api/v1/sessions",
                json={"tts_provider": "elevenlabs", "voice": failed["id"], **SCRIPTED},
            )
            assert session.status_code == 422
            assert session.json()["error"]["code"] == "voice_failed"
            # A failed voice has nothing at the provider: it is simply removed.
            assert (await carol.delete(f"/api/v1/voices/custom/{failed['id']}")).status_code == 204
    finally:
        cloning.elevenlabs.state.clones.limit = slots


def _wav(seconds: float) -> bytes:
    return voice_sample(PITCH_HZ, seconds, "wav", 16_000)


def _silence(seconds: float) -> bytes:
    return encode_pcm(bytes(int(16_000 * seconds) * 2), 16_000, "wav", 16_000).data


async def test_bad_samples_get_a_clear_4xx_and_nothing_is_sent(cloning: Cloning) -> None:
    text = b"Dear diary, this is not a recording at all.\n" * 200
    cases: dict[str, tuple[dict[str, Any], int, str]] = {
        "a text file named .mp3": (
            _form([("song.mp3", text, "audio/mpeg")]),
            415,
            "audio_unsupported",
        ),
        "half a second of audio": (
            _form([("blip.wav", _wav(0.5), "audio/wav")]),
            422,
            "sample_too_short",
        ),
        "eight seconds of silence": (
            _form([("quiet.wav", _silence(8), "audio/wav")]),
            422,
            "sample_silent",
        ),
        "a WAV that says it is MP3": (
            _form([("voice.mp3", _wav(6), "audio/mpeg")]),
            415,
            "audio_mislabelled",
        ),
        "no file": (_form([]), 422, "no_samples"),
        "200 files": (
            _form([(f"s{i}.wav", b"RIFF" + bytes(60), "audio/wav") for i in range(200)]),
            422,
            "too_many_samples",
        ),
        "a 50 MB file": (
            _form([("huge.wav", bytes(50 * 1024 * 1024), "audio/wav")]),
            413,
            "payload_too_large",
        ),
        "no name": (
            {**_form([("me.wav", _wav(6), "audio/wav")]), "data": {"provider": "elevenlabs"}},
            422,
            "validation_error",
        ),
    }
    before = cloning.clone_requests(), await cloning.rows_of("dave")
    answers: dict[str, tuple[int, str]] = {}
    async with cloning.client("dave") as dave:
        for label, (form, _, _) in cases.items():
            answer = await dave.post("/api/voice/clone", **form)
            answers[label] = (answer.status_code, answer.json()["error"]["code"])
    async with cloning.client(None) as nobody:
        unauthenticated = await nobody.post(
            "/api/voice/clone", **_form([("me.wav", _wav(6), "audio/wav")])
        )
    assert answers == {label: (status, code) for label, (_, status, code) in cases.items()}
    assert unauthenticated.status_code == 401
    assert (cloning.clone_requests(), await cloning.rows_of("dave")) == before


async def test_unusable_samples_are_skipped_with_a_warning_and_none_usable_is_refused(
    cloning: Cloning,
) -> None:
    text = ("notes.mp3", b"just some words, no sound\n" * 100, "audio/mpeg")
    short = ("blip.wav", _wav(1), "audio/wav")
    async with cloning.client("erin") as erin:
        mixed = await erin.post(
            "/api/voice/clone", **_form([text, ("long.wav", _wav(7), "audio/wav"), short])
        )
        assert mixed.status_code == 200, mixed.text
        voice = mixed.json()["voice"]
        assert voice["sampleCount"] == 1
        assert any(w.startswith("notes.mp3 was skipped") for w in voice["warnings"])
        assert any(w.startswith("blip.wav was skipped") for w in voice["warnings"])
        assert len(cloning.elevenlabs.state.last("/v1/voices/add").body["files"]) == 1
        await _until_ready(erin, voice["id"])
        assert (await erin.delete(f"/api/v1/voices/custom/{voice['id']}")).status_code == 204

        before = cloning.clone_requests()
        none = await erin.post("/api/voice/clone", **_form([text, short]))
        assert none.status_code == 422
        error = none.json()["error"]
        assert error["code"] == "no_usable_samples"
        assert [(d["loc"], d["type"]) for d in error["details"]] == [
            (["samples", 0], "audio_unsupported"),
            (["samples", 1], "sample_too_short"),
        ]
        assert cloning.clone_requests() == before
        assert (await erin.get(f"/api/v1/voices/custom/{uuid.uuid4()}")).status_code == 404
        assert (await erin.get("/api/v1/voices/custom/not-an-id")).status_code == 404


async def test_cloning_is_rate_limited_per_user(nats_url: str, database_url: str) -> None:
    # A window of its own (3613 s), so that no other test's requests share its counter.
    rate = Rate(2, 3613)
    _, left_s = rate.window_at(time.time())
    if left_s < 10:  # the requests below must fall in one window
        await asyncio.sleep(left_s)
    port = free_port()
    secret = new_secret()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        rate_limits_user={"clone": rate},
    )
    app = create_app(settings, AuthSettings(secret=SecretStr(secret)))
    headers = {"Authorization": f"Bearer {mint_token(secret, 'frank', ttl_s=60)}"}
    async with (
        serving(app, port) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as frank,
    ):
        answers = [await frank.post("/api/voice/clone", **_form([])) for _ in range(3)]
    # The first two reach the route (which wants samples), the third does not.
    assert [a.status_code for a in answers] == [422, 422, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 3613
