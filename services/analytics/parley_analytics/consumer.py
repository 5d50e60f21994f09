"""The durable JetStream consumer: at-least-once delivery of ``parley.events.>``."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import ServiceUnavailableError as JetStreamUnavailable
from prometheus_client import Gauge
from pydantic import ValidationError

from parley_analytics.recorder import Recorder
from parley_common.bus import Bus, MessageMeta
from parley_common.contracts.events import event_adapter
from parley_common.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from parley_common.observability.metrics import JETSTREAM_PENDING

log = logging.getLogger(__name__)

DURABLE = "analytics"
BATCH = 64
RETRY_DELAY_S = 2.0
LAG_EVERY_S = 5.0


async def _measure_lag(sub: JetStreamContext.PullSubscription, lag: Gauge) -> None:
    """The consumer's lag: events stored but not yet processed and acknowledged."""
    try:
        info = await sub.consumer_info()
    except (NatsError, TimeoutError):
        return  # the next measurement will tell; the consumer itself goes on
    lag.set((info.num_pending or 0) + (info.num_ack_pending or 0))


def event_id(msg: Msg) -> str:
    """The key that makes a redelivered fact harmless: the publisher's message id (every
    Parley publisher sets one), else the stream's sequence and storage time. A sequence
    alone repeats once the stream is created again (a new NATS data directory numbers from 1),
    and those facts' rows would collide with older ones and be dropped."""
    headers = msg.headers or {}
    if msg_id := headers.get("Nats-Msg-Id"):
        return msg_id
    meta = msg.metadata
    return f"{meta.stream}:{meta.sequence.stream}@{meta.timestamp.isoformat()}"


async def consume(bus: Bus, recorder: Recorder, stopping: asyncio.Event) -> None:
    """Fetch, store, ack until ``stopping`` is set. A message that fails to store is
    redelivered later; one that cannot be parsed or can never be stored is acknowledged and
    logged, so it cannot block the stream or stop the consumer."""
    await bus.ensure_stream(EVENTS_STREAM, [EVENTS_SUBJECTS])
    sub = await bus.js.pull_subscribe(EVENTS_SUBJECTS, durable=DURABLE, stream=EVENTS_STREAM)
    lag = JETSTREAM_PENDING.labels(DURABLE)
    measured = 0.0
    try:
        while not stopping.is_set():
            if time.monotonic() - measured >= LAG_EVERY_S:
                measured = time.monotonic()
                await _measure_lag(sub, lag)
            try:
                batch = await sub.fetch(BATCH, timeout=1.0)
            except JetStreamUnavailable:
                # The stream is electing a leader (a cluster node died): poll again soon.
                await asyncio.sleep(RETRY_DELAY_S / 4)
                continue
            except TimeoutError:
                # Nothing to fetch. nats-py raises its own TimeoutError or, from some paths,
                # the plain one: either is an empty poll, never a reason to crash.
                continue
            for msg in batch:
                try:
                    event = event_adapter.validate_json(msg.data)
                except ValidationError:
                    log.error("undecodable event dropped", extra={"subject": msg.subject})
                    await msg.ack()
                    continue
                try:
                    await recorder.record(
                        event, event_id(msg), MessageMeta.from_headers(msg.headers)
                    )
                except (
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    OSError,
                    TimeoutError,
                ) as exc:
                    log.warning("store failed; will retry", extra={"error": repr(exc)})
                    await msg.nak(delay=RETRY_DELAY_S)
                    continue
                except ValueError as exc:
                    # A fact about no possible session (its id is not a UUID): no retry can
                    # store it, and it must not stop the facts behind it.
                    log.error(
                        "unstorable event dropped",
                        extra={"subject": msg.subject, "error": str(exc)},
                    )
                await msg.ack()
    finally:
        await sub.unsubscribe()
