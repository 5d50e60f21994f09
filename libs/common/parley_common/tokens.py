"""JWT bearer tokens: who a caller is.

HS256 with ``PARLEY_JWT_SECRET``, or an asymmetric algorithm (RS256, ES256, ...) with a
public key (``PARLEY_JWT_PUBLIC_KEY``, PEM text or a file) or a JWKS file
(``PARLEY_JWT_JWKS_FILE``). Each kind of key accepts only its own family of algorithms, so
``alg: none`` and the algorithm-confusion attack (a token signed with HMAC using the public
key as the secret) are refused before any signature is checked.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_common.errors import UnauthenticatedError

__all__ = [
    "ANONYMOUS",
    "AuthSettings",
    "Principal",
    "TokenVerifier",
    "describe_keys",
    "mint_token",
    "new_secret",
]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MIN_SECRET_CHARS = 32
# Claims a token must carry: who it is for and until when.
_REQUIRED = ["exp", "sub"]


class AuthSettings(BaseSettings):
    """``PARLEY_JWT_*``: the keys tokens are checked with, and the claims required."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_JWT_", env_file=".env", extra="ignore")

    secret: SecretStr | None = None
    public_key: str | None = Field(default=None, description="PEM text, or a PEM file's path")
    jwks_file: Path | None = None
    audience: str | None = None
    issuer: str | None = None
    admin_scope: str = "parley:admin"
    # Clock difference tolerated between the issuer and this machine.
    leeway_s: float = 30.0

    @field_validator("audience", "issuer", "public_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # A copied .env line with nothing after "=" must not demand an empty audience.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 wants an HS256 key of at least 256 bits; a short one can be brute-forced.
        if value is not None and 0 < len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"PARLEY_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters"
                " (`parley token --new-secret` prints one)"
            )
        return value

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (otherwise every caller is let in)."""
        return bool(self.secret and self.secret.get_secret_value()) or bool(
            self.public_key or self.jwks_file
        )


@dataclass(frozen=True)
class Principal:
    """The caller. ``user_id`` None means authentication is off (a loopback development
    gateway without keys): nothing is filtered by owner, and the request names the user."""

    user_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def owns(self, owner: str | None) -> bool:
        """Whether a resource owned by ``owner`` is this caller's to see."""
        return self.user_id is None or self.admin or owner == self.user_id


ANONYMOUS = Principal(user_id=None, admin=True)


class TokenVerifier:
    """Checks tokens against the configured keys; loaded once at start-up."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        secret = settings.secret.get_secret_value() if settings.secret else ""
        self._secret = secret or None
        self._public_key = _load_public_key(settings.public_key) if settings.public_key else None
        self._jwks = (
            jwt.PyJWKSet.from_json(settings.jwks_file.read_text()) if settings.jwks_file else None
        )

    @property
    def enabled(self) -> bool:
        """Whether tokens are required."""
        return self.settings.enabled

    def verify(self, token: str | None) -> Principal:
        """The principal of a valid token; UnauthenticatedError (with a code saying what is
        wrong, never the token's content) for anything else."""
        if not self.enabled:
            return ANONYMOUS
        if not token:
            raise UnauthenticatedError("a bearer token is required", code="token_missing")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthenticatedError("the token is malformed", code="token_invalid") from None
        alg = header.get("alg")
        key = self._key_for(alg, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": _REQUIRED, "verify_aud": self.settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the token has expired", code="token_expired") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise UnauthenticatedError(
                "the token is for another audience or issuer", code="token_audience"
            ) from None
        except jwt.PyJWTError:
            raise UnauthenticatedError(
                "the token's signature or claims are invalid", code="token_invalid"
            ) from None
        return self._principal(claims)

    def _key_for(self, alg: object, kid: object) -> Any:
        if alg in HMAC_ALGORITHMS and self._secret:
            return self._secret
        if alg in ASYMMETRIC_ALGORITHMS:
            if self._jwks is not None:
                for jwk in self._jwks.keys:
                    if (kid is None or jwk.key_id == kid) and jwk.algorithm_name in (None, alg):
                        return jwk.key
            if self._public_key is not None:
                return self._public_key
        raise UnauthenticatedError(
            f"no configured key accepts tokens signed with {alg!s:.20}", code="token_algorithm"
        )

    def _principal(self, claims: dict[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise UnauthenticatedError("the token names no user", code="token_invalid")
        scopes = _scopes(claims)
        return Principal(user_id=sub, scopes=scopes, admin=self.settings.admin_scope in scopes)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    # OAuth puts scopes in a space-separated ``scope``; Azure and others use a ``scp`` list.
    raw = claims.get("scope", claims.get("scp", ()))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


def _load_public_key(value: str) -> Any:
    text = value if "-----BEGIN" in value else Path(value).read_text()
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(text.encode())


def mint_token(
    secret: str,
    user_id: str,
    *,
    ttl_s: float = 3600.0,
    scopes: list[str] | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 token for ``user_id`` (``parley token``, the local call page, tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + int(ttl_s)}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def new_secret() -> str:
    """A fresh random HS256 secret (256 bits)."""
    return secrets.token_urlsafe(32)


def describe_keys(settings: AuthSettings) -> str:
    """Which kinds of keys are configured, for a start-up log line (never the keys)."""
    kinds = [
        name
        for name, present in (
            ("HS256 secret", bool(settings.secret)),
            ("public key", bool(settings.public_key)),
            ("JWKS", bool(settings.jwks_file)),
        )
        if present
    ]
    return ", ".join(kinds) or "none (authentication off)"
