"""Stores what was said, as audio, when (and only when) ``PARLEY_STORE_AUDIO=1``.

Without it nothing subscribes to any session's subjects and no audio is kept anywhere.
With it, one subscription to every session's subjects (one, so that a session's messages
are seen in the order they were sent) feeds a ``SessionRecording`` per session; each clip
it cuts (a user utterance, an assistant reply) is encoded as FLAC and written to
``voice_audio`` by a writer task, so that no bus callback waits for an encoder or the
database. Writes are idempotent per (session, turn, role): two analytics replicas both
see every message, and the table keeps one copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
from nats.aio.subscription import Subscription

from parley_analytics.recordings import Clip, SessionRecording
from parley_common.audio.encode import Encoding, encode_pcm_async
from parley_common.bus import Bus, Received
from parley_common.bus.audio import AudioInMeta, AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    SessionEnd,
    SpeechStopped,
    TurnCommitted,
    UserText,
    control_adapter,
    interrupt_adapter,
    reply_adapter,
    speech_adapter,
    transcript_adapter,
)
from parley_common.contracts.subjects import SessionChannel

log = logging.getLogger(__name__)

ENCODING: Encoding = "flac"
# Clips waiting for the encoder and the database; beyond, new ones are dropped (logged).
QUEUE_SIZE = 64
# A session silent this long (its end was never seen) is forgotten.
FORGET_AFTER_S = 600.0
PRUNE_EVERY_S = 60.0
# At shutdown, clips already cut are written for at most this long.
DRAIN_S = 5.0

_INSERT = """INSERT INTO voice_audio (session_id, turn_id, role, encoding, mime_type,
                 sample_rate, duration_seconds, interrupted, audio)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE EXISTS (SELECT 1 FROM voice_sessions WHERE id = $1)
             ON CONFLICT (session_id, turn_id, role) DO NOTHING"""


class AudioStore:
    """Cuts every session's utterances and replies and writes them to ``voice_audio``."""

    def __init__(self, bus: Bus, pool: asyncpg.Pool) -> None:
        self.bus = bus
        self.pool = pool
        self._sessions: dict[str, tuple[SessionRecording, float]] = {}
        self._clips: asyncio.Queue[Clip] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0

    async def run(self) -> None:
        """Record until cancelled; the clips already cut are then written (for at most
        ``DRAIN_S``) before it returns."""
        sub: Subscription = await self.bus.subscribe(subjects.every_session(), self._on_message)
        await self.bus.flush()
        log.info("storing audio (PARLEY_STORE_AUDIO=1)")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._write_forever())
                tg.create_task(self._prune_forever())
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DRAIN_S):
                    while not self._clips.empty():
                        await self._write(self._clips.get_nowait())

    # -- bus -> recordings (no I/O here) ---------------------------------------------------
    async def _on_message(self, msg: Received) -> None:
        parsed = subjects.parse_session(msg.subject)
        if parsed is None:
            return
        try:
            self._dispatch(msg, *parsed)
        except ValueError as exc:  # pydantic's ValidationError is one
            # Not a message of the session's protocol: nothing to record from it.
            log.debug("message not recorded", extra={"subject": msg.subject, "error": str(exc)})

    def _dispatch(self, msg: Received, sid: str, channel: SessionChannel) -> None:
        if channel is SessionChannel.CONTROL:
            if isinstance(msg.decode(control_adapter), SessionEnd):
                self._end(sid)
            return
        recording = self._recording(sid)
        match channel:
            case SessionChannel.AUDIO_IN:
                recording.audio_in(msg.data, AudioInMeta.parse(msg.meta.extra).offset)
            case SessionChannel.SPEECH:
                if isinstance(event := msg.decode(speech_adapter), SpeechStopped):
                    recording.speech_stopped(event.at_ms)
            case SessionChannel.TRANSCRIPT:
                final = msg.decode(transcript_adapter)
                if final.is_final and final.text.strip():
                    recording.final_transcript(final.audio_ms)
            case SessionChannel.REPLY:
                turn = msg.decode(reply_adapter)
                # A speculative answer's turn is the user's once it commits (after its final).
                spoken = isinstance(turn, UserText) and not turn.typed and not turn.speculative
                if spoken or isinstance(turn, TurnCommitted):
                    self._keep(recording.user_turn(msg.meta.turn_id))
            case SessionChannel.AUDIO_OUT:
                out = AudioOutMeta.parse(msg.meta.extra)
                turn_id = msg.meta.turn_id
                if out.end:
                    self._keep(recording.audio_out_end(turn_id))
                else:
                    self._keep(recording.audio_out(turn_id, msg.data, out.rate))
            case SessionChannel.INTERRUPT:
                if isinstance(cut := msg.decode(interrupt_adapter), Interrupt):
                    clip = recording.interrupted(cut.turn_id)
                    if cut.reason is not InterruptReason.SPECULATION:  # else never heard
                        self._keep(clip)
            case _:
                pass  # status: nothing to hear

    def _recording(self, sid: str) -> SessionRecording:
        found = self._sessions.get(sid)
        recording = found[0] if found else SessionRecording(sid)
        self._sessions[sid] = (recording, time.monotonic())
        return recording

    def _end(self, sid: str) -> None:
        found = self._sessions.pop(sid, None)
        if found is not None:
            for clip in found[0].close():
                self._keep(clip)

    def _keep(self, clip: Clip | None) -> None:
        if clip is None:
            return
        try:
            self._clips.put_nowait(clip)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "audio clip dropped: the store is behind",
                extra={"session_id": clip.session_id, "turn_id": clip.turn_id},
            )

    # -- recordings -> PostgreSQL ----------------------------------------------------------
    async def _write_forever(self) -> None:
        while True:
            clip = await self._clips.get()
            try:
                await self._write(clip)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                # Recordings are a convenience, not a fact that must not be lost.
                log.warning(
                    "audio clip not stored",
                    extra={"session_id": clip.session_id, "error": repr(exc)},
                )

    async def _write(self, clip: Clip) -> None:
        encoded = await encode_pcm_async(clip.pcm, clip.sample_rate, ENCODING, clip.sample_rate)
        await self.pool.execute(
            _INSERT,
            uuid.UUID(clip.session_id),
            clip.turn_id,
            clip.role,
            encoded.encoding,
            encoded.mime_type,
            encoded.sample_rate,
            clip.duration_s,
            clip.interrupted,
            encoded.data,
        )

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            stale = time.monotonic() - FORGET_AFTER_S
            for sid in [s for s, (_, seen) in self._sessions.items() if seen < stale]:
                self._end(sid)


@contextlib.asynccontextmanager
async def storing_audio(bus: Bus, pool: asyncpg.Pool, *, enabled: bool) -> AsyncIterator[None]:
    """Record sessions' audio while the block runs, if ``enabled``; otherwise do nothing
    at all (no subscription, no buffer)."""
    if not enabled:
        log.info("audio is not stored (PARLEY_STORE_AUDIO is not 1)")
        yield
        return
    store = AudioStore(bus, pool)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(store.run())
        try:
            yield
        finally:
            task.cancel()
