"""How browsers and clients reach the gateway: which other origins may call it (CORS) and
whether it speaks TLS itself (``https://`` and ``wss://`` without a proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from pydantic import BeforeValidator
from pydantic_settings import NoDecode
from starlette.middleware.cors import CORSMiddleware

# What a cross-origin caller may send: a bearer token and a JSON or multipart body.
CORS_HEADERS = ("Authorization", "Content-Type")
CORS_METHODS = ("GET", "POST", "PUT", "DELETE")
# What a cross-origin script may read besides the safe headers (when to retry a 429).
CORS_EXPOSED = ("Retry-After",)
CORS_MAX_AGE_S = 600


def _origins(raw: object) -> tuple[str, ...]:
    """``GATEWAY_CORS_ORIGINS``: a comma-separated list of ``scheme://host[:port]`` (or
    ``*``); blank entries are ignored, anything else that is not an origin is refused."""
    if isinstance(raw, str):
        items = [item.strip() for item in raw.split(",")]
    elif isinstance(raw, list | tuple):
        items = [str(item).strip() for item in raw]
    else:
        raise ValueError("GATEWAY_CORS_ORIGINS must be a comma-separated list of origins")
    origins = tuple(item.rstrip("/") for item in items if item)
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(
                f"GATEWAY_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com"
            )
    return origins


CorsOrigins = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)]


def install_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Answer CORS preflights: the listed origins may call every route with a bearer token;
    with none listed, every preflight is refused and no response allows another origin.
    Tokens travel in a header, never in cookies, so credentials stay off."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=list(CORS_METHODS),
        allow_headers=list(CORS_HEADERS),
        expose_headers=list(CORS_EXPOSED),
        allow_credentials=False,
        max_age=CORS_MAX_AGE_S,
    )


def check_tls_pair(cert: Path | None, key: Path | None) -> None:
    """Both files or neither, and both readable files: anything else is a configuration
    error that names the variable at fault."""
    if (cert is None) != (key is None):
        given, missing = ("CERT", "KEY") if key is None else ("KEY", "CERT")
        raise ValueError(
            f"GATEWAY_TLS_{given} is set but GATEWAY_TLS_{missing} is not: set both (a PEM"
            " certificate chain and its private key) to serve https:// and wss://, or neither"
        )
    for name, path in (("CERT", cert), ("KEY", key)):
        if path is not None and not path.is_file():
            raise ValueError(f"GATEWAY_TLS_{name}={path} is not a file")


def tls_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """uvicorn's TLS arguments: empty without TLS (plain HTTP)."""
    check_tls_pair(cert, key)
    if cert is None or key is None:
        return {}
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
