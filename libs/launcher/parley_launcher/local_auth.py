"""Tokens for a platform run by ``parley up``: a local HS256 secret kept in the data
directory (created on first use), and ``parley token`` to mint tokens with it.

Authentication is never off under ``parley up``: the gateway requires tokens, the URL it
prints carries one for the call page (in the fragment, which browsers never send), and
``parley token --user NAME`` prints one for curl. A deployment that configures its own keys
(``PARLEY_JWT_*``) keeps them; tokens are then minted by its identity provider.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import SecretStr, ValidationError

from parley_common.tokens import AuthSettings, mint_token, new_secret
from parley_launcher.state import resolve_data_dir

SECRET_FILE = "jwt_secret"
SECRET_ENV = "PARLEY_JWT_SECRET"
# The call page's token: long enough for a working day of calls from one page load.
PAGE_TOKEN_TTL_S = 12 * 3600
PAGE_USER = "local"


def secret_path(data_dir: Path) -> Path:
    """Where ``parley up`` keeps its secret."""
    return data_dir / SECRET_FILE


def ensure_local_secret(data_dir: Path, env: dict[str, str]) -> str | None:
    """The HS256 secret tokens are minted with, set in ``env`` for every service: the one
    configured, else the data directory's (created, readable by its owner only). None when
    the deployment configured only asymmetric keys (nothing here can mint for them)."""
    configured = env.get(SECRET_ENV, "")
    if configured:
        return configured
    if env.get("PARLEY_JWT_PUBLIC_KEY") or env.get("PARLEY_JWT_JWKS_FILE"):
        return None
    path = secret_path(data_dir)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_secret())
    secret = path.read_text().strip()
    env[SECRET_ENV] = secret
    return secret


def page_token(secret: str) -> str:
    """The token handed to the call page in the URL ``parley up`` prints."""
    settings = AuthSettings(secret=SecretStr(secret))
    return mint_token(
        secret,
        PAGE_USER,
        ttl_s=PAGE_TOKEN_TTL_S,
        audience=settings.audience,
        issuer=settings.issuer,
    )


def token(args: argparse.Namespace) -> int:
    """``parley token``: print a token for ``--user`` (or, with ``--new-secret``, a fresh
    secret for PARLEY_JWT_SECRET)."""
    if args.new_secret:
        print(new_secret())
        return 0
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        path = secret_path(resolve_data_dir(args.data_dir))
        if not path.exists():
            print(
                f"No secret: set {SECRET_ENV}, or run `parley up` once to create {path}.",
                file=sys.stderr,
            )
            return 1
        secret = path.read_text().strip()
    try:
        settings = AuthSettings(secret=SecretStr(secret))
    except ValidationError as exc:
        print(exc.errors()[0]["msg"], file=sys.stderr)
        return 1
    scopes = [settings.admin_scope] if args.admin else None
    print(
        mint_token(
            secret,
            args.user,
            ttl_s=args.ttl,
            scopes=scopes,
            audience=settings.audience,
            issuer=settings.issuer,
        )
    )
    return 0
