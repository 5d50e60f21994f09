"""Starting and ending sessions: the row, the workers that take it, the durable events."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import AssignAck, SessionAssign, SessionEnd
from parley_common.contracts.events import SessionEnded, SessionStarted
from parley_common.contracts.session import CreateSessionRequest, SessionConfig, SessionStatus
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import (
    NotFoundError,
    ParleyError,
    ProviderUnavailableError,
    ServiceUnavailableError,
)
from parley_common.tokens import Principal
from parley_gateway.custom_voices import CustomVoiceStore
from parley_gateway.sessions.placement import WorkerRegistry
from parley_gateway.sessions.store import SessionRecord, SessionStore
from parley_gateway.sessions.voice_configs import VoiceConfigStore

log = logging.getLogger(__name__)

# The services that hold per-session streaming state and must each take a new session.
STREAMING_SERVICES = ("stt", "llm", "tts")
# A worker whose last heartbeat is older than this is not chosen for a new session.
FRESH_WITHIN_S = 1.5


class SessionLifecycle:
    """Creates and ends sessions; the only writer of a session's status."""

    def __init__(
        self,
        store: SessionStore,
        bus: Bus,
        assign_timeout_s: float,
        max_sessions_per_user: int | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.assign_timeout_s = assign_timeout_s
        self.max_sessions_per_user = max_sessions_per_user
        self.voice_configs = VoiceConfigStore(store.pool)
        # Fed by the WorkerMonitor's heartbeats; empty, every session goes to the queue group.
        self.workers = WorkerRegistry()

    async def start(self, request: CreateSessionRequest, principal: Principal) -> SessionRecord:
        """Store the session and have one worker of each streaming service take it. The
        chatbot's voice configuration fills in what the request did not choose. An
        authenticated user over the cap of concurrent sessions gets a RateLimitedError."""
        config = await self._config(request, principal)
        await CustomVoiceStore(self.store.pool).check_session_voice(config, principal)
        # Without authentication every caller is one user: a per-user cap means nothing.
        cap = self.max_sessions_per_user if principal.user_id is not None else None
        record = await self.store.create(request.user_id, request.chatbot_id, config, cap)
        try:
            await self.assign(record)
        except ParleyError:
            await self.store.end(record.id)
            await self._release(record.id)
            raise
        event = SessionStarted(
            session_id=record.id,
            at=record.started_at,
            user_id=record.user_id,
            chatbot_id=record.chatbot_id,
            config=config,
        )
        await self.bus.js_publish(
            subjects.event("session.started"),
            event,
            MessageMeta(session_id=record.id),
            msg_id=f"{record.id}:started",
        )
        log.info("session started", extra={"session_id": record.id})
        return record

    async def _config(self, request: CreateSessionRequest, principal: Principal) -> SessionConfig:
        config = request.session_config()
        if request.chatbot_id is None:
            return config
        stored = await self.voice_configs.get(request.chatbot_id, principal)
        if stored is None:
            return config
        chosen = request.model_fields_set
        defaults = {k: v for k, v in stored.session_defaults().items() if k not in chosen}
        return SessionConfig.model_validate({**config.model_dump(), **defaults})

    async def assign(self, record: SessionRecord) -> dict[str, str]:
        """Ask each streaming service's queue group to take the session; returns the worker
        id per service. Raises ServiceUnavailableError when a service has no worker,
        ProviderUnavailableError when one refuses the session."""
        results = await asyncio.gather(
            *(self.assign_service(service, record) for service in STREAMING_SERVICES)
        )
        return dict(zip(STREAMING_SERVICES, results, strict=True))

    async def assign_service(self, service: str, record: SessionRecord) -> str:
        """Have one worker of ``service`` take the session, the least-loaded one this
        gateway knows of, else any of its queue group; returns its worker id."""
        request = SessionAssign(session_id=record.id, user_id=record.user_id, config=record.config)
        chosen = self.workers.least_loaded(service, FRESH_WITHIN_S)
        if chosen is not None:
            self.workers.reserve(chosen, record.id)
            try:
                return await self._request(service, subjects.assign_to(service, chosen), request)
            except ServiceUnavailableError as exc:
                self.workers.release(chosen, record.id)
                if not isinstance(exc.__cause__, NoRespondersError):
                    raise
                # Gone since its last beat: the failover moves its sessions; this one goes
                # to whichever worker of the queue group is there.
                self.workers.unreachable(chosen)
            except ParleyError:
                self.workers.release(chosen, record.id)
                raise
        worker = await self._request(service, subjects.assign(service), request)
        self.workers.reserve(worker, record.id)
        return worker

    async def _request(self, service: str, subject: str, request: SessionAssign) -> str:
        meta = MessageMeta(session_id=request.session_id)
        try:
            reply = await self.bus.request(subject, request, meta, timeout=self.assign_timeout_s)
        except (NoRespondersError, NatsTimeoutError) as exc:
            raise ServiceUnavailableError(f"no {service} worker is available") from exc
        ack = AssignAck.model_validate_json(reply.data)
        if not ack.ok:
            raise ProviderUnavailableError(f"{service}: {ack.error or 'session refused'}")
        return ack.worker_id

    async def end(self, session_id: str) -> SessionRecord:
        """End the session (idempotent): record totals, release workers, emit the event."""
        ended = await self.store.end(session_id)
        if ended is None:
            raise NotFoundError(f"session {session_id} does not exist", code="session_not_found")
        record, ended_now = ended
        if ended_now:
            await self._release(record.id)
            event = SessionEnded(
                session_id=record.id,
                at=record.ended_at or datetime.now(UTC),
                user_id=record.user_id,
                config=record.config,
                duration_seconds=record.duration_seconds or 0.0,
                total_turns=record.total_turns,
                interruptions_count=record.interruptions_count,
            )
            await self.bus.js_publish(
                subjects.event("session.ended"),
                event,
                MessageMeta(session_id=record.id),
                # A resumed conversation ends again later: each end is its own fact.
                msg_id=f"{record.id}:ended:{event.at.timestamp()}",
            )
            log.info("session ended", extra={"session_id": record.id})
        return record

    async def resume(self, record: SessionRecord) -> SessionRecord:
        """Continue a conversation: an ended session becomes active again and one worker of
        each streaming service takes it (the dialogue worker reloads the conversation from
        its transcript, so the memory carries on). An active session is returned as it is."""
        if record.status is SessionStatus.ACTIVE:
            return record
        reopened = await self.store.reopen(record.id)
        if reopened is None:  # another call resumed it first (or it was removed)
            current = await self.store.get(record.id)
            if current is None:
                raise NotFoundError(f"session {record.id} does not exist", code="session_not_found")
            return current
        try:
            await self.assign(reopened)
        except ParleyError:
            await self.store.end(reopened.id)
            await self._release(reopened.id)
            raise
        log.info("session resumed", extra={"session_id": reopened.id})
        return reopened

    async def _release(self, session_id: str) -> None:
        await self.bus.publish(
            subjects.session(session_id, SessionChannel.CONTROL),
            SessionEnd(),
            MessageMeta(session_id=session_id),
        )
