"""How the gateway is reached: CORS preflights allowed only for GATEWAY_CORS_ORIGINS, and
TLS served by the gateway itself with GATEWAY_TLS_CERT / GATEWAY_TLS_KEY (https://, wss://)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed

from parley_common.contracts.ws import CLOSE_SESSION_NOT_FOUND
from parley_common.testing import eventually
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings
from parley_gateway.transport import tls_options
from parley_launcher.embedded.process import free_port

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _client(monkeypatch: pytest.MonkeyPatch, origins: str | None) -> httpx.AsyncClient:
    """A client on a gateway app configured by GATEWAY_CORS_ORIGINS; a preflight is the
    middleware's alone, so the app's lifespan (bus, database) is not needed."""
    if origins is None:
        monkeypatch.delenv("GATEWAY_CORS_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("GATEWAY_CORS_ORIGINS", origins)
    app = create_app(GatewaySettings(), AuthSettings.model_construct())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_a_listed_origin_may_call_with_a_bearer_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _client(monkeypatch, f"{ALLOWED}, http://localhost:5173") as client:
        response = await client.options(
            "/api/v1/sessions", headers={"Origin": ALLOWED, **PREFLIGHT}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        allowed_headers = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers
        assert "POST" in response.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in response.headers
        # The real request then carries the header the browser checks.
        simple = await client.get("/openapi.json", headers={"Origin": "http://localhost:5173"})
        assert simple.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, ALLOWED) as client:
        response = await client.options(
            "/api/v1/sessions", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        simple = await client.get("/openapi.json", headers={"Origin": "https://evil.example"})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers


async def test_by_default_no_other_origin_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, None) as client:
        for origin in (ALLOWED, "http://localhost:5173"):
            response = await client.options(
                "/api/v1/sessions", headers={"Origin": origin, **PREFLIGHT}
            )
            assert response.status_code == 400
            assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "bad", ["app.example.com", "https://app.example.com/path", "ftp://app.example.com"]
)
def test_a_cors_entry_that_is_not_an_origin_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", f"{ALLOWED},{bad}")
    with pytest.raises(ValidationError, match="GATEWAY_CORS_ORIGINS"):
        GatewaySettings()


# -- TLS -----------------------------------------------------------------------------------
def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _gateway_env(**extra: str) -> dict[str, str]:
    # No developer setting may leak in: no token keys (a loopback gateway may run without),
    # no other GATEWAY_ option.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "PARLEY_JWT_", "NATS_URL", "DATABASE_URL"))
    }
    return {**env, **extra}


@pytest.fixture
async def tls_gateway(
    tmp_path: Path, nats_url: str, database_url: str
) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """(https base URL, a context trusting its certificate) of ``python -m parley_gateway``."""
    cert, key = _self_signed(tmp_path)
    port = free_port()
    env = _gateway_env(
        NATS_URL=nats_url,
        DATABASE_URL=database_url,
        GATEWAY_HTTP_PORT=str(port),
        GATEWAY_TLS_CERT=str(cert),
        GATEWAY_TLS_KEY=str(key),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley_gateway",
        env=env,
        cwd=tmp_path,  # no .env file of a checkout is read
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(verify=context, timeout=2) as client:

            async def up() -> bool:
                if proc.returncode is not None:
                    raise AssertionError("the gateway exited before it served")
                try:
                    return (await client.get(f"{url}/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, within_s=60, every_s=0.2)
        yield url, context
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_the_gateway_serves_https_and_wss_itself(
    tls_gateway: tuple[str, ssl.SSLContext],
) -> None:
    url, context = tls_gateway
    async with httpx.AsyncClient(verify=context, timeout=10) as client:
        health = await client.get(f"{url}/health")
        assert health.status_code == 200
        assert health.json()["checks"] == {"nats": "ok", "postgres": "ok"}
    # Plain HTTP on the TLS port gets no answer a client could take for the API.
    async with httpx.AsyncClient(timeout=5) as plain:
        with pytest.raises(httpx.HTTPError):
            (await plain.get(url.replace("https://", "http://") + "/health")).raise_for_status()
    # Without trusting the certificate, the client refuses the server.
    async with httpx.AsyncClient(timeout=5) as untrusting:
        with pytest.raises(httpx.ConnectError):
            await untrusting.get(f"{url}/health")
    sid = uuid.uuid4()
    wss = url.replace("https://", "wss://") + f"/api/v1/sessions/{sid}/ws"
    async with websockets.connect(wss, ssl=context) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_SESSION_NOT_FOUND


@pytest.mark.parametrize("given", ["CERT", "KEY"])
async def test_one_tls_file_without_the_other_stops_the_gateway_with_a_clear_error(
    tmp_path: Path, given: str
) -> None:
    cert, key = _self_signed(tmp_path)
    path = cert if given == "CERT" else key
    missing = "KEY" if given == "CERT" else "CERT"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley_gateway",
        env=_gateway_env(**{f"GATEWAY_TLS_{given}": str(path)}),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    message = stderr.decode()
    assert f"GATEWAY_TLS_{given} is set but GATEWAY_TLS_{missing} is not" in message
    assert "Traceback" not in message


def test_a_tls_path_that_is_not_a_file_is_named(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(ValueError, match=r"GATEWAY_TLS_KEY=.*is not a file"):
        tls_options(cert, tmp_path / "missing.pem")
    assert tls_options(None, None) == {}
    assert tls_options(cert, cert) == {"ssl_certfile": str(cert), "ssl_keyfile": str(cert)}
