"""One session, two connections (two tabs): the older one is closed as replaced, and the JS
client takes that as final instead of reconnecting and evicting the newer one in turn."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from parley_common.contracts.ws import CLOSE_REPLACED

CLIENT_JS = Path(__file__).resolve().parents[3] / "clients" / "js" / "parley-client.js"
# Two ParleyClients on one session with a fast backoff: a fight would show within 2 s.
TWO_WINDOWS = """
import { ParleyClient } from %(module)s;
const options = {
  apiUrl: %(api)s, userId: 'two-windows', reconnect: { baseDelayMs: 50, maxDelayMs: 100 },
};
const first = new ParleyClient(options);
const second = new ParleyClient(options);
const attempts = [];
const errors = [];
for (const [name, c] of [['first', first], ['second', second]]) {
  c.on('state', (s) => s.state === 'reconnecting' && attempts.push(name));
  c.on('error', (e) => errors.push({
    name, code: e.code, message: e.message, closeCode: e.closeCode ?? null,
  }));
}
const session = await first.start();
await second.connect(session.id);
await new Promise((resolve) => setTimeout(resolve, 2000));
console.log(JSON.stringify({ attempts, errors, first: first.state, second: second.state }));
first.disconnect();
second.disconnect();
process.exit(0);
"""


async def test_a_second_connection_replaces_the_first(
    client: httpx.AsyncClient, gateway_url: str
) -> None:
    sid = (await client.post("/api/v1/sessions", json={})).json()["id"]
    url = gateway_url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/ws"
    async with websockets.connect(url) as first:
        assert json.loads(await first.recv())["type"] == "ready"
        async with websockets.connect(url) as second:
            assert json.loads(await second.recv())["type"] == "ready"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(first.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_REPLACED
            assert closed.value.rcvd.reason == "replaced by a newer connection"
            # The session is the newer connection's now.
            await second.send(json.dumps({"type": "ping", "ts": 7.0}))
            pong = json.loads(await second.recv())
            assert (pong["type"], pong["data"]["ts"]) == ("pong", 7.0)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (>= 20.10)")
async def test_the_js_client_gives_way_instead_of_fighting(gateway_url: str) -> None:
    script = TWO_WINDOWS % {
        "module": json.dumps(CLIENT_JS.as_uri()),
        "api": json.dumps(gateway_url),
    }
    node = await asyncio.create_subprocess_exec(
        "node",
        "--experimental-websocket",  # global WebSocket on node 20 (the default from 22)
        "--input-type=module",
        "-e",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), 30)
    assert node.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert len(result["attempts"]) <= 1, result["attempts"]
    assert result["first"] == "closed"
    assert result["second"] == "connected"
    assert result["errors"] == [
        {
            "name": "first",
            "code": "session_replaced",
            "message": "This call continues in another window.",
            "closeCode": CLOSE_REPLACED,
        }
    ]
