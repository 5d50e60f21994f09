"""A thin layer over nats-py: the same verbs, plus our headers and message codec."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError
from pydantic import BaseModel, TypeAdapter

from parley_common.bus.headers import MessageMeta
from parley_common.bus.streams import StreamLimits
from parley_common.contracts import subjects
from parley_common.observability.metrics import BUS_REQUEST_SECONDS

log = logging.getLogger(__name__)
T = TypeVar("T")
# How long a durable publish waits out a stream without a leader: when a cluster node dies,
# the stream's followers wait 4 to 9 s (nats-server's Raft election timeout) before they
# elect another; 20 s leaves room for a second round. Past it, the caller's retries decide.
JS_PUBLISH_PATIENCE_S = 20.0
Payload = bytes | BaseModel


@dataclass(frozen=True, slots=True)
class Received:
    """One message as a handler sees it."""

    subject: str
    data: bytes
    meta: MessageMeta
    reply: str
    raw: Msg

    def decode(self, adapter: TypeAdapter[T]) -> T:
        """Validate the JSON payload against a contracts adapter."""
        return adapter.validate_json(self.data)


Handler = Callable[[Received], Awaitable[None]]


def encode(payload: Payload) -> bytes:
    """Audio stays raw bytes; every other message is its contract model as JSON."""
    if isinstance(payload, bytes):
        return payload
    return payload.model_dump_json().encode()


def seed_urls(url: str) -> list[str]:
    """The servers of ``NATS_URL``: one URL, or a cluster's seeds separated by commas."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("NATS_URL names no server")
    return urls


def request_target(subject: str) -> str:
    """A request's subject as a metric label: ``stt.assign``, ``tts.job.synthesize``; never
    a session id (requests go to services, not to sessions)."""
    prefix = f"{subjects.PREFIX}.svc."
    if not subject.startswith(prefix):
        return "other"
    target = subject[len(prefix) :]
    # A request to one worker (``stt.worker.<id>.assign``) is labelled without its id.
    service, _, direct = target.partition(".worker.")
    return f"{service}.worker.{direct.partition('.')[2]}" if direct else target


class Bus:
    """The NATS connection of one process, opened in its lifespan and passed explicitly."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    @classmethod
    async def connect(cls, url: str, name: str, **options: Any) -> Bus:
        """Connect with reconnects that never give up: the bus outlives NATS restarts.
        ``url`` may list a cluster's seed servers, comma-separated: the client moves to
        another node when one goes down."""

        async def _error(exc: Exception) -> None:
            log.warning("nats error", extra={"error": repr(exc)})

        nc = await nats.connect(
            servers=seed_urls(url),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_error,
            **options,
        )
        return cls(nc)

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return bool(self.nc.is_connected)

    async def publish(self, subject: str, payload: Payload, meta: MessageMeta) -> None:
        """At-most-once publish on core NATS."""
        await self.nc.publish(subject, encode(payload), headers=meta.to_headers())

    async def subscribe(self, subject: str, handler: Handler, queue: str = "") -> Subscription:
        """Call ``handler`` for every message, one at a time, in arrival order."""

        async def _cb(msg: Msg) -> None:
            received = Received(
                subject=msg.subject,
                data=msg.data,
                meta=MessageMeta.from_headers(msg.headers),
                reply=msg.reply,
                raw=msg,
            )
            try:
                await handler(received)
            except Exception:
                # One bad message must not kill the subscription's task.
                log.exception("bus handler failed", extra={"subject": msg.subject})

        return await self.nc.subscribe(subject, queue=queue, cb=_cb)

    async def request(
        self,
        subject: str,
        payload: Payload,
        meta: MessageMeta,
        timeout: float = 2.0,  # noqa: ASYNC109 - nats.py's verb, kept as is
    ) -> Received:
        """Request/reply (to a queue group, typically)."""
        started = time.perf_counter()
        msg = await self.nc.request(
            subject, encode(payload), timeout=timeout, headers=meta.to_headers()
        )
        BUS_REQUEST_SECONDS.labels(request_target(subject)).observe(time.perf_counter() - started)
        return Received(
            subject=msg.subject,
            data=msg.data,
            meta=MessageMeta.from_headers(msg.headers),
            reply="",
            raw=msg,
        )

    async def respond(self, request: Received, payload: Payload, meta: MessageMeta) -> None:
        """Answer a request."""
        await self.nc.publish(request.reply, encode(payload), headers=meta.to_headers())

    async def flush(self) -> None:
        """Wait until the server has processed everything sent so far (subscriptions
        included). Shielded: nats-py's read loop dies with InvalidStateError when the pong of
        a cancelled flush arrives, taking every subscription of the connection with it; a
        session cancelled right after it started must not break the worker's bus."""
        await asyncio.shield(self.nc.flush())

    async def js_publish(
        self, subject: str, payload: Payload, meta: MessageMeta, *, msg_id: str | None = None
    ) -> PubAck:
        """Durable publish to JetStream; returns once the stream has stored it. A ``msg_id``
        makes a retried publish harmless: the stream stores one copy.

        While the stream has no leader (a cluster node died and the replicas elect another,
        seconds) nobody answers: the publish is tried again for up to
        ``JS_PUBLISH_PATIENCE_S``. A timeout is retried only with a ``msg_id``, since the
        stream may have stored the message and lost only its ack."""
        headers = meta.to_headers()
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        data = encode(payload)
        deadline = time.monotonic() + JS_PUBLISH_PATIENCE_S
        pause = 0.1
        while True:
            try:
                return await self.js.publish(subject, data, headers=headers)
            except (NoStreamResponseError, nats.errors.TimeoutError) as exc:
                retryable = isinstance(exc, NoStreamResponseError) or msg_id is not None
                left = deadline - time.monotonic()
                if not retryable or left <= 0:
                    raise
                if pause == 0.1:  # once per publish, not once per try
                    log.warning("events stream not answering; retrying", extra={"subject": subject})
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, 1.0)

    async def ensure_stream(
        self, name: str, subjects: list[str], limits: StreamLimits | None = None
    ) -> None:
        """Create the stream if it is missing, or bring its limits to ``limits`` (default:
        ``StreamLimits.from_env()``); idempotent, safe from every process."""
        limits = limits or StreamLimits.from_env()
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            await self.js.add_stream(limits.config(name, subjects))
            return
        if limits.differs(info.config):
            await self.js.update_stream(limits.config(name, subjects))

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """Drain subscriptions and pending publishes, then close; a drain that hangs (a pull
        subscription waiting on its request) is cut short so that shutdown stays prompt."""
        if self.nc.is_closed:
            return
        try:
            await asyncio.wait_for(self.nc.drain(), drain_timeout_s)
        except (TimeoutError, nats.errors.Error):
            log.warning("bus drain timed out; closing")
            await self.nc.close()
