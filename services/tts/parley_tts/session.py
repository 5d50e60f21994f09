"""Per-session work of the tts service."""

from __future__ import annotations

import asyncio

from parley_common.contracts.bus import SessionAssign
from parley_common.runtime import Runtime
from parley_common.workers import SessionFactory, SessionWork


class _Held:
    async def run(self) -> None:
        await asyncio.Event().wait()


def open_session(runtime: Runtime) -> SessionFactory:
    """The factory the worker calls for each assigned session."""

    async def factory(assign: SessionAssign) -> SessionWork:
        return _Held()

    return factory
