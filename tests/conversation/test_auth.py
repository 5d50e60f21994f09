"""Authentication and isolation through a gateway that requires tokens: every route of the
OpenAPI schema and both session WebSocket paths refuse a missing, expired, forged or
unsigned token, and a user never reaches another user's session, transcript or chatbot."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import websockets
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed

from conftest import SecuredPlatform
from parley_common.contracts.ws import (
    CLOSE_SESSION_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
)
from parley_common.testing import serving
from parley_common.tokens import AuthSettings, mint_token
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.process import free_port
from tests.conversation.conftest import SCRIPTED

# Reachable without a token: what load balancers, Prometheus and the browser need.
PUBLIC = {"/health", "/metrics"}
# Phone providers cannot send Parley's token: their webhooks are authenticated by the
# provider's signature instead (tested with the telephony routes).
SIGNED_BY_PROVIDER = "/telephony/"
WS_PATHS = ("/api/v1/sessions/{sid}/ws", "/ws/voice/{sid}")


def _bad_tokens(platform: SecuredPlatform) -> dict[str, str | None]:
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    return {
        "absent": None,
        "expired": platform.token("alice", ttl_s=-120),
        "forged": jwt.encode(claims, "not-the-secret-" * 3, algorithm="HS256"),
        "alg_none": jwt.encode(claims, "", algorithm="none"),
        "garbage": "abc.def.ghi",
    }


def _operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    ops: list[tuple[str, str]] = []
    for path, item in schema["paths"].items():
        if path in PUBLIC or path.startswith(SIGNED_BY_PROVIDER):
            continue
        for method, operation in item.items():
            # The schema tells clients every one of these needs the bearer token.
            assert {"HTTPBearer": []} in operation.get("security", []), (method, path)
        concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        ops.extend((method.upper(), concrete) for method in item)
    return ops


async def test_every_route_refuses_requests_without_a_valid_token(
    secured_platform: SecuredPlatform,
) -> None:
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        schema = (await http.get("/openapi.json")).json()
        operations = _operations(schema)
        assert len(operations) >= 15  # every API route, not a handful
        for name, token in _bad_tokens(secured_platform).items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for method, path in operations:
                response = await http.request(method, path, headers=headers)
                assert response.status_code == 401, (name, method, path, response.text)
                body = response.json()
                assert body["success"] is False
                assert body["error"]["code"].startswith("token_"), body
                assert response.headers["www-authenticate"].startswith("Bearer")
        # And the public ones stay public.
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/")).status_code == 200


async def test_a_token_in_the_query_is_for_websockets_only(
    secured_platform: SecuredPlatform,
) -> None:
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        token = secured_platform.token("alice")
        response = await http.get("/api/v1/providers", params={"token": token})
        assert response.status_code == 401


def _ws(url: str, path: str, token: str | None) -> str:
    query = f"?token={token}" if token else ""
    return url.replace("http://", "ws://") + path + query


async def _close_code(url: str) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _start(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.post("/api/v1/sessions", json=SCRIPTED, headers=headers)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def test_both_websocket_paths_check_the_token_and_the_owner(
    secured_platform: SecuredPlatform,
) -> None:
    alice = secured_platform.headers("alice")
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        sid = (await _start(http, alice))["id"]
        for template in WS_PATHS:
            path = template.format(sid=sid)
            for name, token in _bad_tokens(secured_platform).items():
                code, reason = await _close_code(_ws(secured_platform.url, path, token))
                assert code == CLOSE_UNAUTHENTICATED, (name, path)
                assert reason
            # Bob's valid token: alice's session does not exist for him.
            bob = secured_platform.token("bob")
            code, _ = await _close_code(_ws(secured_platform.url, path, bob))
            assert code == CLOSE_SESSION_NOT_FOUND
            # Alice connects, in the query or in the header.
            async with websockets.connect(
                _ws(secured_platform.url, path, secured_platform.token("alice"))
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
            async with websockets.connect(
                _ws(secured_platform.url, path, None), additional_headers=alice
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
        await http.post(f"/api/v1/sessions/{sid}/end", headers=alice)


async def test_another_users_session_is_not_found_and_stays_untouched(
    secured_platform: SecuredPlatform,
) -> None:
    alice = secured_platform.headers("alice")
    bob = secured_platform.headers("bob")
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        session = await _start(http, alice)
        sid = session["id"]
        assert session["user_id"] == "alice"
        for method, path in (
            ("GET", f"/api/v1/sessions/{sid}"),
            ("GET", f"/api/v1/sessions/{sid}/transcript"),
            ("POST", f"/api/v1/sessions/{sid}/end"),
            ("GET", f"/api/voice/{sid}/transcript"),
            ("POST", f"/api/voice/{sid}/end"),
        ):
            response = await http.request(method, path, headers=bob)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "session_not_found"
            assert "alice" not in response.text
        still = await http.get(f"/api/v1/sessions/{sid}", headers=alice)
        assert still.json()["status"] == "active"
        # An admin may see it.
        admin = secured_platform.headers("ops", scopes=["parley:admin"])
        assert (await http.get(f"/api/v1/sessions/{sid}", headers=admin)).status_code == 200
        await http.post(f"/api/v1/sessions/{sid}/end", headers=alice)


async def test_the_user_is_the_tokens_subject(secured_platform: SecuredPlatform) -> None:
    alice = secured_platform.headers("alice")
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        as_bob = await http.post("/api/voice/start", json={"userId": "bob"}, headers=alice)
        assert as_bob.status_code == 403
        assert as_bob.json()["error"]["code"] == "user_mismatch"
        v1_bob = await http.post(
            "/api/v1/sessions", json={**SCRIPTED, "user_id": "bob"}, headers=alice
        )
        assert v1_bob.status_code == 403
        filled = await http.post("/api/voice/start", json=SCRIPTED, headers=alice)
        assert filled.status_code == 200, filled.text
        sid = filled.json()["session"]["id"]
        view = (await http.get(f"/api/v1/sessions/{sid}", headers=alice)).json()
        assert view["user_id"] == "alice"
        await http.post(f"/api/voice/{sid}/end", headers=alice)


async def test_a_chatbot_belongs_to_the_user_who_configured_it(
    secured_platform: SecuredPlatform,
) -> None:
    alice = secured_platform.headers("alice")
    bob = secured_platform.headers("bob")
    path = "/api/v1/voice/config/alices-bot"
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=30) as http:
        stored = await http.put(path, json={"tts_speed": 1.5}, headers=alice)
        assert stored.status_code == 200, stored.text
        assert (await http.get(path, headers=bob)).status_code == 404
        overwrite = await http.put(path, json={"tts_speed": 0.5}, headers=bob)
        assert overwrite.status_code == 404
        assert (await http.get(path, headers=alice)).json()["tts_speed"] == 1.5
        # Nor may bob start sessions with alice's chatbot.
        started = await http.post(
            "/api/v1/sessions", json={**SCRIPTED, "chatbot_id": "alices-bot"}, headers=bob
        )
        assert started.status_code == 404
        assert started.json()["error"]["code"] == "chatbot_not_found"


async def test_a_user_over_the_session_cap_gets_429(
    nats_url: str, database_url: str, pool: asyncpg.Pool, platform_workers: None
) -> None:
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        max_sessions_per_user=2,
    )
    auth = AuthSettings(secret=SecretStr("cap-test-secret-with-enough-length-32b"))
    async with serving(create_app(settings, auth), port) as url:
        platform = SecuredPlatform(url, "cap-test-secret-with-enough-length-32b")
        carol = platform.headers("carol")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = await _start(http, carol)
            await _start(http, carol)
            refused = await http.post("/api/v1/sessions", json=SCRIPTED, headers=carol)
            statuses = await pool.fetch(
                "SELECT status, metadata FROM voice_sessions WHERE user_id = 'carol'"
            )
            assert refused.status_code == 429, [dict(r) for r in statuses]
            assert refused.json()["error"]["code"] == "too_many_sessions"
            assert int(refused.headers["retry-after"]) > 0
            # Another user is not affected; ending one frees a slot.
            await _start(http, platform.headers("dave"))
            await http.post(f"/api/v1/sessions/{first['id']}/end", headers=carol)
            await _start(http, carol)


async def test_a_token_for_another_audience_is_refused_on_routes_and_sockets(
    nats_url: str, database_url: str, platform_workers: None
) -> None:
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url, database_url=SecretStr(database_url), http_port=port
    )
    secret = "audience-test-secret-with-enough-length"
    auth = AuthSettings(secret=SecretStr(secret), audience="parley", issuer="https://id.example")
    async with serving(create_app(settings, auth), port) as url:
        right = mint_token(secret, "erin", audience="parley", issuer="https://id.example")
        other_aud = mint_token(secret, "erin", audience="billing", issuer="https://id.example")
        other_iss = mint_token(secret, "erin", audience="parley", issuer="https://evil.example")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            ok = await http.post(
                "/api/v1/sessions", json=SCRIPTED, headers={"Authorization": f"Bearer {right}"}
            )
            assert ok.status_code == 201, ok.text
            sid = ok.json()["id"]
            for token in (other_aud, other_iss):
                refused = await http.get(
                    f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}
                )
                assert refused.status_code == 401
                assert refused.json()["error"]["code"] == "token_audience"
                for template in WS_PATHS:
                    code, _ = await _close_code(_ws(url, template.format(sid=sid), token))
                    assert code == CLOSE_UNAUTHENTICATED
            await http.post(
                f"/api/v1/sessions/{sid}/end", headers={"Authorization": f"Bearer {right}"}
            )
