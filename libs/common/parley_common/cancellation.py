"""Cancellation that is not lost.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that races its timeout (the
libraries under us use it: nats-py's JetStream publish, asyncpg). The task's pending
cancellation is still counted, so a loop that must end when cancelled checks it after each
such call instead of waiting forever on its next item.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError if the current task was asked to stop and the request was
    swallowed on the way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
