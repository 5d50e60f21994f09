"""The session WebSocket: refusal codes, ping/pong, bad messages."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from parley_common.contracts.ws import CLOSE_SESSION_ENDED, CLOSE_SESSION_NOT_FOUND


def _ws(gateway_url: str, path: str) -> str:
    return gateway_url.replace("http://", "ws://") + path


@pytest.mark.parametrize("template", ["/api/v1/sessions/{sid}/ws", "/ws/voice/{sid}"])
async def test_ping_gets_pong_on_both_routes(
    client: httpx.AsyncClient, gateway_url: str, template: str
) -> None:
    sid = (await client.post("/api/v1/sessions", json={})).json()["id"]
    async with websockets.connect(_ws(gateway_url, template.format(sid=sid))) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready"
        assert ready["data"]["session_id"] == sid
        assert ready["data"]["output_sample_rate"] == 24000
        await ws.send(json.dumps({"type": "ping", "ts": 123.5}))
        pong = json.loads(await ws.recv())
        assert pong["type"] == "pong"
        assert pong["data"]["ts"] == 123.5
        assert pong["data"]["server_ts"] > 0


async def test_bad_messages_get_errors_and_the_call_goes_on(
    client: httpx.AsyncClient, gateway_url: str
) -> None:
    sid = (await client.post("/api/v1/sessions", json={})).json()["id"]
    async with websockets.connect(_ws(gateway_url, f"/api/v1/sessions/{sid}/ws")) as ws:
        await ws.recv()  # ready
        for bad in [
            "{not json",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "text_message"}),
        ]:
            await ws.send(bad)
            error = json.loads(await ws.recv())
            assert error["type"] == "error"
            assert error["data"]["code"] == "invalid_message"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_unknown_session_is_refused_with_a_reason(gateway_url: str) -> None:
    for sid in (str(uuid.uuid4()), "garbage"):
        async with websockets.connect(_ws(gateway_url, f"/api/v1/sessions/{sid}/ws")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_SESSION_NOT_FOUND
        assert "not found" in closed.value.rcvd.reason


async def test_ended_session_is_refused_with_a_reason(
    client: httpx.AsyncClient, gateway_url: str
) -> None:
    sid = (await client.post("/api/v1/sessions", json={})).json()["id"]
    await client.post(f"/api/v1/sessions/{sid}/end")
    async with websockets.connect(_ws(gateway_url, f"/ws/voice/{sid}")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_SESSION_ENDED
    assert "ended" in closed.value.rcvd.reason
