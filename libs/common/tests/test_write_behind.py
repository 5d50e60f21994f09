"""The ordered write-behind queue: order kept, failures retried, what is left flushed when
its task is cancelled, and what cannot be written counted rather than silently dropped."""

from __future__ import annotations

import asyncio

from parley_common.testing import eventually
from parley_common.write_behind import LOST, WriteBehind


async def test_items_are_applied_in_order_and_failures_are_retried() -> None:
    applied: list[int] = []
    failures = {2: 2}  # item 2 fails twice, then works

    async def apply(item: int) -> None:
        if failures.get(item):
            failures[item] -= 1
            raise ConnectionError("database restarting")
        applied.append(item)

    queue: WriteBehind[int] = WriteBehind("test-order", apply, retry_delay_s=0.0)
    task = asyncio.create_task(queue.run())
    for item in range(1, 6):
        queue.put(item)
    await eventually(lambda: queue.pending == 0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert applied == [1, 2, 3, 4, 5]


async def test_cancelling_flushes_what_is_left() -> None:
    applied: list[int] = []
    release = asyncio.Event()

    async def apply(item: int) -> None:
        if item == 1:
            await release.wait()  # the first write is slow: the rest queue up behind it
        applied.append(item)

    queue: WriteBehind[int] = WriteBehind("test-flush", apply)
    task = asyncio.create_task(queue.run())
    for item in (1, 2, 3):
        queue.put(item)
    await asyncio.sleep(0.05)
    release.set()
    task.cancel()  # the session ends while writes are pending
    await asyncio.gather(task, return_exceptions=True)
    assert applied == [1, 2, 3]


async def test_a_write_that_keeps_failing_is_counted_as_lost() -> None:
    async def apply(item: int) -> None:
        raise ConnectionError("database down")

    before = LOST.labels("test-lost")._value.get()
    queue: WriteBehind[int] = WriteBehind("test-lost", apply, retries=2, retry_delay_s=0.0)
    task = asyncio.create_task(queue.run())
    queue.put(1)
    await eventually(lambda: queue.pending == 0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert LOST.labels("test-lost")._value.get() == before + 1


async def test_transient_failures_are_retried_until_they_pass() -> None:
    applied: list[int] = []
    outage = {"left": 12}  # far more failures than ``retries`` allows

    async def apply(item: int) -> None:
        if outage["left"]:
            outage["left"] -= 1
            raise ConnectionRefusedError("database down")
        applied.append(item)

    before = LOST.labels("test-transient")._value.get()
    queue: WriteBehind[int] = WriteBehind(
        "test-transient",
        apply,
        retries=2,
        retry_delay_s=0.0,
        transient=(ConnectionError,),
        max_retry_delay_s=0.01,
    )
    task = asyncio.create_task(queue.run())
    for item in (1, 2, 3):
        queue.put(item)
    await eventually(lambda: queue.pending == 0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert applied == [1, 2, 3]  # in order, none given up
    assert LOST.labels("test-transient")._value.get() == before


async def test_writes_beyond_max_pending_and_a_flush_cut_short_are_counted_lost() -> None:
    async def apply(item: int) -> None:
        raise ConnectionRefusedError("database down")

    before = LOST.labels("test-bounded")._value.get()
    queue: WriteBehind[int] = WriteBehind(
        "test-bounded",
        apply,
        transient=(ConnectionError,),
        max_retry_delay_s=0.01,
        flush_timeout_s=0.05,
        max_pending=3,
    )
    task = asyncio.create_task(queue.run())
    for item in range(5):
        queue.put(item)
    assert queue.pending == 3  # two dropped at once
    assert LOST.labels("test-bounded")._value.get() == before + 2
    await asyncio.sleep(0.05)
    task.cancel()  # still down when the session ends: the flush gives up on all three
    await asyncio.gather(task, return_exceptions=True)
    assert LOST.labels("test-bounded")._value.get() == before + 5
