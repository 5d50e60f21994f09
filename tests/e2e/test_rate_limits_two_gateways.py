"""Issue 9's acceptance: the N+1st session start in the window gets 429 with Retry-After,
across two gateway processes (``python -m parley_gateway``, as deployed) on one NATS."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from parley_common.testing import eventually
from parley_common.tokens import mint_token, new_secret
from parley_gateway.limits import Rate
from parley_launcher.embedded.process import free_port

pytestmark = pytest.mark.e2e

# Three starts per user per hour: an hour, so that the four starts below fall in one window.
LIMIT = Rate(3, 3600)
SCRIPTED = {"stt_provider": "scripted", "llm_provider": "scripted", "tts_provider": "scripted"}


@dataclass
class GatewayProcess:
    """A gateway child process and what it printed."""

    proc: asyncio.subprocess.Process
    url: str
    output: bytearray = field(default_factory=bytearray)

    async def drain(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.output.extend(chunk)


async def healthy(http: httpx.AsyncClient, gateway: GatewayProcess) -> bool:
    if gateway.proc.returncode is not None:
        raise AssertionError(f"gateway exited:\n{gateway.output.decode(errors='replace')}")
    try:
        return (await http.get(f"{gateway.url}/health")).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.asynccontextmanager
async def two_gateways(
    nats_url: str, database_url: str, secret: str, cwd: str
) -> AsyncIterator[list[GatewayProcess]]:
    """Two gateways with the low limit, healthy; killed on the way out whatever happens."""
    gateways: list[GatewayProcess] = []
    drains: list[asyncio.Task[None]] = []
    try:
        for _ in range(2):
            port = free_port()
            env = {
                **os.environ,
                "NATS_URL": nats_url,
                "DATABASE_URL": database_url,
                "GATEWAY_HTTP_PORT": str(port),
                "PARLEY_JWT_SECRET": secret,
                "GATEWAY_RATE_LIMITS_USER": f"session_start={LIMIT.count}/{LIMIT.window_s}s",
                # A loaded machine must not turn a check into a let-through.
                "GATEWAY_RATE_LIMITS_TIMEOUT_S": "5",
                "LOG_LEVEL": "WARNING",
            }
            # cwd: a directory without a .env, so only this environment counts.
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "parley_gateway",
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            gateway = GatewayProcess(proc, f"http://127.0.0.1:{port}")
            gateways.append(gateway)
            drains.append(asyncio.create_task(gateway.drain()))
        async with httpx.AsyncClient(timeout=5) as http:
            for gateway in gateways:
                await eventually(functools.partial(healthy, http, gateway), 60, 0.2)
        yield gateways
    finally:
        for gateway in gateways:
            if gateway.proc.returncode is None:
                gateway.proc.kill()
            await gateway.proc.wait()
        await asyncio.gather(*drains, return_exceptions=True)


async def test_the_fourth_session_start_is_refused_across_two_gateways(
    nats_url: str, database_url: str, platform_workers: None, tmp_path: Path
) -> None:
    _, left_s = LIMIT.window_at(time.time())
    if left_s < 60:  # the four starts must fall in one window
        await asyncio.sleep(left_s)
    secret = new_secret()
    alice, bob = f"alice-{uuid.uuid4()}", f"bob-{uuid.uuid4()}"

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(secret, user, ttl_s=600)}"}

    async with (
        two_gateways(nats_url, database_url, secret, str(tmp_path)) as (first, second),
        httpx.AsyncClient(timeout=15) as http,
    ):
        # Alternating gateways, and both routes that start a session.
        starts = [
            (first, "/api/v1/sessions"),
            (second, "/api/voice/start"),
            (first, "/api/v1/sessions"),
            (second, "/api/v1/sessions"),
        ]
        answers = [
            await http.post(f"{gw.url}{path}", json=SCRIPTED, headers=auth(alice))
            for gw, path in starts
        ]
        assert [a.status_code for a in answers[:3]] == [201, 200, 201], [a.text for a in answers]
        refused = answers[3]
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= LIMIT.window_s
        body = refused.json()
        assert body["success"] is False
        assert body["error"]["code"] == "rate_limited"
        # The same user is refused by the other gateway too; another user is not limited.
        again = await http.post(f"{first.url}/api/v1/sessions", json=SCRIPTED, headers=auth(alice))
        assert again.status_code == 429
        bobs = []
        for gw in (first, second):
            other = await http.post(f"{gw.url}/api/v1/sessions", json=SCRIPTED, headers=auth(bob))
            assert other.status_code == 201, other.text
            bobs.append(other.json()["id"])

        alices = [
            answers[0].json()["id"],
            answers[1].json()["session"]["id"],
            answers[2].json()["id"],
        ]
        for user, sids in ((alice, alices), (bob, bobs)):
            for sid in sids:
                await http.post(f"{first.url}/api/v1/sessions/{sid}/end", headers=auth(user))
