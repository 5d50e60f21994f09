"""A session's input-audio position shared by every gateway process.

``SessionPositions`` keeps the position in this process, so a client that reconnects to the
same process continues the session's clock. With several gateway processes on one port, a
reconnect may land on another one: the position is also kept in a JetStream key-value bucket,
read when a connection opens and written (never backwards) when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from parley_common.bus import Bus

log = logging.getLogger(__name__)

BUCKET = "PARLEY_AUDIO_POSITIONS"
TTL_S = 24 * 3600  # a session not reconnected within a day restarts its clock at 0
# The bucket is a help, not a need: a slow or missing one does not hold a connection up.
TIMEOUT_S = 1.0


class SharedPositions:
    """Input-audio positions in the bucket, by session id."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._bus.js.key_value(BUCKET)
            except BucketNotFoundError:
                config = KeyValueConfig(
                    bucket=BUCKET, ttl=TTL_S, history=1, storage=StorageType.MEMORY
                )
                try:
                    self._kv = await self._bus.js.create_key_value(config)
                except BadRequestError:  # another gateway process created it in between
                    self._kv = await self._bus.js.key_value(BUCKET)
        return self._kv

    async def load(self, session_id: str) -> int:
        """The session's position as the last connection anywhere left it (0: unknown)."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                entry = await (await self._bucket()).get(session_id)
        except KeyNotFoundError:
            return 0
        except (NatsError, TimeoutError, OSError) as exc:
            log.warning("shared audio position not read", extra={"error": type(exc).__name__})
            return 0
        return int(entry.value or b"0")

    async def save(self, session_id: str, sample: int) -> None:
        """Record the session's position, unless one further on is there already."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                if sample > await self.load(session_id):
                    await (await self._bucket()).put(session_id, str(sample).encode())
        except (NatsError, TimeoutError, OSError) as exc:
            log.warning("shared audio position not saved", extra={"error": type(exc).__name__})


_BY_BUS: weakref.WeakKeyDictionary[Bus, SharedPositions] = weakref.WeakKeyDictionary()


def shared_positions(bus: Bus) -> SharedPositions:
    """The one ``SharedPositions`` of ``bus`` (the gateway's connection)."""
    with contextlib.suppress(KeyError):
        return _BY_BUS[bus]
    shared = _BY_BUS[bus] = SharedPositions(bus)
    return shared
