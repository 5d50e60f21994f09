"""The clone service's jobs on the real embedded NATS and PostgreSQL: a voice stored as
``processing`` and turned ``ready`` (or ``failed`` with the provider's reason) by a clone
that outlives the request, deleted at its provider, resolved for a TTS worker; samples kept
only when configured; clones left behind by a stopped worker marked failed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import pytest
from pydantic import SecretStr

from parley_clone.cloner import INTERRUPTED
from parley_clone.providers.base import Sample, VoiceCloner
from parley_clone.providers.elevenlabs import ElevenLabsCloner
from parley_clone.settings import CloneSettings
from parley_clone.store import VoiceRows
from parley_clone.testing import clone_worker, voice_sample
from parley_common.bus import Bus
from parley_common.contracts.jobs import (
    CLONE_CREATE,
    CLONE_DELETE,
    CLONE_RESOLVE,
    PROVIDER_VOICE_PREFIX,
    CloneJobParams,
    CloneProvider,
    CloneSample,
    CustomVoiceRef,
    ResolvedVoice,
)
from parley_common.errors import (
    BadInputError,
    ConflictError,
    NotFoundError,
    ProviderUnavailableError,
)
from parley_common.jobs import request_job
from parley_emulators import elevenlabs
from parley_emulators.base import running

PITCH_HZ = 200.0


class _Held:
    """A provider whose clones wait until the test lets them finish."""

    name = "elevenlabs"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.deleted: list[str] = []

    async def clone(self, name: str, description: str | None, samples: Sequence[Sample]) -> str:
        self.started.set()
        await self.release.wait()
        return f"held-{name}"

    async def delete(self, voice_id: str) -> None:
        self.deleted.append(voice_id)

    async def aclose(self) -> None:
        return None


def _only(cloner: VoiceCloner) -> Callable[[CloneProvider], VoiceCloner]:
    def pick(name: CloneProvider) -> VoiceCloner:
        if name is not CloneProvider.ELEVENLABS:
            raise ProviderUnavailableError("no API key: set PLAYHT_API_KEY", provider=name.value)
        return cloner

    return pick


def _job(owner: str = "alice", count: int = 2) -> tuple[CloneJobParams, bytes]:
    files = [voice_sample(PITCH_HZ, 6, "mp3", 44_100) for _ in range(count)]
    params = CloneJobParams(
        owner=owner,
        name="Narrator",
        description="calm",
        provider=CloneProvider.ELEVENLABS,
        samples=[
            CloneSample(filename=f"sample-{i:02d}.mp3", size=len(f), duration_s=6.0)
            for i, f in enumerate(files, start=1)
        ],
        uploaded=count,
        total_duration_s=6.0 * count,
        warnings=["2 usable samples: 10 or more samples of 1-2 minutes each clone a closer voice."],
    )
    return params, b"".join(files)


async def _create(bus: Bus, params: CloneJobParams, upload: bytes) -> str:
    ref, _ = await request_job(bus, "clone", CLONE_CREATE, params, CustomVoiceRef, upload=upload)
    return ref.voice_id


async def _row(pool: asyncpg.Pool, voice_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM custom_voices WHERE id = $1", uuid.UUID(voice_id))
    assert row is not None
    return row


async def _until(pool: asyncpg.Pool, voice_id: str, status: str) -> asyncpg.Record:
    """The voice's row once it has ``status`` (within 2 s)."""
    for _ in range(100):
        row = await _row(pool, voice_id)
        if row["status"] == status:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"voice {voice_id} is still {row['status']}, not {status}")


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner]]:
    state = elevenlabs.ElevenLabsState()
    async with running(elevenlabs.app(state)) as url:
        cloner = ElevenLabsCloner(SecretStr("test-key"), base_url=url, timeout_s=5)
        try:
            yield state, cloner
        finally:
            await cloner.aclose()


async def test_a_clone_is_ready_with_its_samples_counted_and_nothing_kept(
    nats_url: str,
    pool: asyncpg.Pool,
    bus: Bus,
    emulator: tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner],
) -> None:
    state, cloner = emulator
    params, upload = _job(count=3)
    async with clone_worker(nats_url, pool, cloners=_only(cloner)):
        voice_id = await _create(bus, params, upload)
    row = await _row(pool, voice_id)
    assert row["status"] == "ready"
    assert row["user_id"] == "alice"
    assert (row["name"], row["description"], row["provider"]) == ("Narrator", "calm", "elevenlabs")
    assert (row["sample_count"], row["total_duration_seconds"]) == (3, 18.0)
    assert row["warnings"] == params.warnings
    assert row["error"] is None
    added = state.last("/v1/voices/add")
    # The provider knows the voice by Parley's id, never by the user's name for it.
    assert added.body["name"] == PROVIDER_VOICE_PREFIX + voice_id
    assert row["provider_voice_id"] == added.query["voice_id"]
    assert state.clones.pitch(row["provider_voice_id"]) == pytest.approx(PITCH_HZ, abs=2)
    kept = await pool.fetchval(
        "SELECT count(*) FROM custom_voice_samples WHERE voice_id = $1", uuid.UUID(voice_id)
    )
    assert kept == 0


async def test_samples_are_kept_only_when_configured(
    nats_url: str,
    pool: asyncpg.Pool,
    bus: Bus,
    emulator: tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner],
) -> None:
    _, cloner = emulator
    params, upload = _job()
    settings = CloneSettings(drain_s=0, keep_samples=True)
    async with clone_worker(nats_url, pool, settings, cloners=_only(cloner)):
        voice_id = await _create(bus, params, upload)
    rows = await pool.fetch(
        """SELECT ordinal, filename, mime_type, duration_seconds, audio
           FROM custom_voice_samples WHERE voice_id = $1 ORDER BY ordinal""",
        uuid.UUID(voice_id),
    )
    assert [r["filename"] for r in rows] == ["sample-01.mp3", "sample-02.mp3"]
    assert {r["mime_type"] for r in rows} == {"audio/mpeg"}
    assert b"".join(r["audio"] for r in rows) == upload


async def test_a_slow_clone_answers_processing_then_turns_ready(
    nats_url: str, pool: asyncpg.Pool, bus: Bus
) -> None:
    held = _Held()
    params, upload = _job()
    settings = CloneSettings(drain_s=0, ready_wait_s=0.2)
    async with clone_worker(nats_url, pool, settings, cloners=_only(held)):
        voice_id = await _create(bus, params, upload)
        assert (await _row(pool, voice_id))["status"] == "processing"
        # Deleting a voice mid-clone would leave the provider's voice without a row.
        with pytest.raises(ConflictError) as busy:
            await request_job(
                bus, "clone", CLONE_DELETE, CustomVoiceRef(voice_id=voice_id), CustomVoiceRef
            )
        assert busy.value.code == "voice_processing"
        with pytest.raises(BadInputError) as not_ready:
            await request_job(
                bus, "clone", CLONE_RESOLVE, CustomVoiceRef(voice_id=voice_id), ResolvedVoice
            )
        assert not_ready.value.code == "voice_not_ready"
        held.release.set()
        row = await _until(pool, voice_id, "ready")
    assert row["provider_voice_id"] == f"held-{PROVIDER_VOICE_PREFIX}{voice_id}"


async def test_a_refused_clone_fails_with_the_providers_reason(
    nats_url: str,
    pool: asyncpg.Pool,
    bus: Bus,
    emulator: tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner],
) -> None:
    state, cloner = emulator
    state.clones.limit = 0
    params, upload = _job()
    async with clone_worker(nats_url, pool, cloners=_only(cloner)):
        voice_id = await _create(bus, params, upload)
    row = await _row(pool, voice_id)
    assert row["status"] == "failed"
    assert row["provider_voice_id"] is None
    assert "no voice slot left" in row["error"]
    assert "voice_limit_reached" in row["error"]


async def test_an_unavailable_provider_is_refused_before_anything_is_stored(
    nats_url: str, pool: asyncpg.Pool, bus: Bus
) -> None:
    params, upload = _job(owner="carol")
    playht = params.model_copy(update={"provider": CloneProvider.PLAYHT})
    before = await pool.fetchval("SELECT count(*) FROM custom_voices WHERE user_id = 'carol'")
    async with clone_worker(nats_url, pool, cloners=_only(_Held())):
        with pytest.raises(ProviderUnavailableError) as caught:
            await _create(bus, playht, upload)
        assert "PLAYHT_API_KEY" in caught.value.message
        # An upload that does not add up to its list of samples is refused too.
        with pytest.raises(BadInputError):
            await _create(bus, params, upload[:-10])
    after = await pool.fetchval("SELECT count(*) FROM custom_voices WHERE user_id = 'carol'")
    assert after == before


async def test_delete_and_resolve_see_only_the_owners_voice(
    nats_url: str,
    pool: asyncpg.Pool,
    bus: Bus,
    emulator: tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner],
) -> None:
    state, cloner = emulator
    params, upload = _job(owner="alice")
    async with clone_worker(nats_url, pool, cloners=_only(cloner)):
        voice_id = await _create(bus, params, upload)
        provider_id = (await _row(pool, voice_id))["provider_voice_id"]
        resolved, _ = await request_job(
            bus, "clone", CLONE_RESOLVE, CustomVoiceRef(voice_id=voice_id), ResolvedVoice
        )
        assert resolved == ResolvedVoice(
            voice_id=voice_id, provider=CloneProvider.ELEVENLABS, provider_voice_id=provider_id
        )
        for kind, result in ((CLONE_RESOLVE, ResolvedVoice), (CLONE_DELETE, CustomVoiceRef)):
            for ref in (
                CustomVoiceRef(voice_id=voice_id, owner="bob"),
                CustomVoiceRef(voice_id=str(uuid.uuid4())),
                CustomVoiceRef(voice_id="not-a-uuid"),
            ):
                with pytest.raises(NotFoundError):
                    await request_job(bus, "clone", kind, ref, result)
        assert state.voice(provider_id) is not None
        mine = CustomVoiceRef(voice_id=voice_id, owner="alice")
        await request_job(bus, "clone", CLONE_DELETE, mine, CustomVoiceRef)
    assert state.voice(provider_id) is None
    assert state.last(f"/v1/voices/{provider_id}").method == "DELETE"
    key = uuid.UUID(voice_id)
    assert await pool.fetchval("SELECT count(*) FROM custom_voices WHERE id = $1", key) == 0


async def test_clones_a_stopped_worker_left_are_marked_failed(
    nats_url: str, pool: asyncpg.Pool, bus: Bus
) -> None:
    held = _Held()
    params, upload = _job()
    settings = CloneSettings(drain_s=0, ready_wait_s=0.1)
    async with clone_worker(nats_url, pool, settings, cloners=_only(held)):
        interrupted = await _create(bus, params, upload)
        await held.started.wait()
    row = await _row(pool, interrupted)
    assert (row["status"], row["error"]) == ("failed", INTERRUPTED)

    # A worker that died without a word: its row is swept once it is old enough.
    rows = VoiceRows(pool)
    orphan = str(uuid.uuid4())
    await rows.insert(orphan, params)
    await pool.execute(
        "UPDATE custom_voices SET updated_at = now() - interval '1 hour' WHERE id = $1",
        uuid.UUID(orphan),
    )
    fresh = str(uuid.uuid4())
    await rows.insert(fresh, params)
    sweeping = CloneSettings(drain_s=0, stale_after_s=600)
    async with clone_worker(nats_url, pool, sweeping, cloners=_only(held)):
        swept = await _until(pool, orphan, "failed")
    assert swept["error"] == INTERRUPTED
    assert (await _row(pool, fresh))["status"] == "processing"
    await rows.delete(fresh)
