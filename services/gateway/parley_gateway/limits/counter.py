"""Counters in a NATS JetStream key-value bucket, changed only by compare-and-set, so that
every gateway replica counting on the same bucket sees one count.

One key per (kind, scope, identity, window): a counter never needs resetting, a new window
is a new key, and the bucket's TTL drops the keys of windows that are over.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from parley_common.cancellation import raise_if_cancelling

BUCKET = "parley_rate_limits"
# Each conflict means another request's write won, so a burst of K concurrent requests on
# one key needs at most K rounds; past this many the key is too hot to be worth the wait.
MAX_ATTEMPTS = 20
# Jitter between attempts spreads out writers that keep colliding.
_BACKOFF_S = 0.002


class ContentionError(Exception):
    """A counter stayed contended for ``MAX_ATTEMPTS`` compare-and-set rounds."""


def counter_key(kind: str, scope: str, identity: str, window_s: int, index: int) -> str:
    """The key of one window's counter. The identity (a user id, an IP) is hashed: it may
    hold characters a KV key may not, and the bucket need not hold who called."""
    digest = hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()
    return f"{kind}.{scope}.{window_s}.{index}.{digest}"


async def open_bucket(js: JetStreamContext, ttl_s: int) -> KeyValue:
    """The rate-limit bucket, created on first use. Its TTL must outlast the longest window
    (a counter dropped early would reopen its window), so an existing bucket with a shorter
    one, made by a replica configured with shorter windows, is extended."""
    try:
        kv = await js.key_value(BUCKET)
    except BucketNotFoundError:
        config = KeyValueConfig(bucket=BUCKET, ttl=ttl_s, history=1, storage=StorageType.MEMORY)
        try:
            return await js.create_key_value(config)
        except BadRequestError:
            # Another replica created it in between, with another TTL.
            kv = await js.key_value(BUCKET)
    status = await kv.status()
    if not status.ttl or status.ttl < ttl_s:
        stream = status.stream_info.config
        window = min(stream.duplicate_window or ttl_s, ttl_s)
        await js.update_stream(stream, max_age=ttl_s, duplicate_window=window)
    return kv


class WindowCounters:
    """Compare-and-set increments of the counters in one bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def _read(self, key: str) -> tuple[int, int]:
        """The count at ``key`` and its revision (0: no such key)."""
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return 0, 0
        finally:
            raise_if_cancelling()
        return int(entry.value or b"0"), entry.revision or 0

    async def _write(self, key: str, count: int, revision: int) -> bool:
        """Store ``count`` if ``key`` is still at ``revision``; False if another write won."""
        value = str(count).encode()
        try:
            if revision == 0:
                await self._kv.create(key, value)
            else:
                await self._kv.update(key, value, last=revision)
        except KeyWrongLastSequenceError:
            return False
        finally:
            raise_if_cancelling()
        return True

    async def _change(self, key: str, step: Callable[[int], int | None]) -> bool:
        """Replace the count with ``step(count)`` by compare-and-set, again on each conflict;
        False when ``step`` declines (returns None). Raises ContentionError when the key
        stays contended, and the bus's errors."""
        for attempt in range(MAX_ATTEMPTS):
            count, revision = await self._read(key)
            new = step(count)
            if new is None:
                return False
            if await self._write(key, new, revision):
                return True
            await asyncio.sleep(random.uniform(0, _BACKOFF_S * (attempt + 1)))
        raise ContentionError(key)

    async def take(self, key: str, limit: int) -> bool:
        """Add one to the counter unless it has reached ``limit``: True if it was added."""
        return await self._change(key, lambda count: count + 1 if count < limit else None)

    async def give_back(self, key: str) -> None:
        """Take one off the counter: a request counted here was refused by another limit."""
        await self._change(key, lambda count: count - 1 if count > 0 else None)
