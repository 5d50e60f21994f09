"""The tokens a voice webhook puts in the media stream it answers with.

The stream routes carry no Parley bearer token (the provider opens them), so the webhook,
whose request the provider signed, mints a token for that one call: HS256, a minute long,
for one provider, one call id and the stream's exact parameters (their digest), used once.
A WebSocket that does not present one is refused before any session starts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping

import jwt

from parley_common.errors import UnauthenticatedError

log = logging.getLogger(__name__)

AUDIENCE = "parley:telephony-stream"
# Redeemed tokens remembered (for their lifetime) so that none opens a second stream.
MAX_REDEEMED = 10_000
_DERIVATION = b"parley telephony stream tokens v1"


def stream_key(secret: str | None, jwt_secret: str | None) -> bytes:
    """The key stream tokens are signed with: ``PARLEY_TELEPHONY_SECRET``; else one derived
    from ``PARLEY_JWT_SECRET`` (a different key, so neither token passes for the other);
    else a random key of this process, which only this gateway can check."""
    if secret:
        return secret.encode()
    if jwt_secret:
        return hmac.new(jwt_secret.encode(), _DERIVATION, hashlib.sha256).digest()
    log.warning(
        "phone stream tokens are signed with a key of this process: with several gateway"
        " replicas set PARLEY_TELEPHONY_SECRET"
    )
    return secrets.token_bytes(32)


def parameters_digest(parameters: Mapping[str, str]) -> str:
    """A digest of a stream's custom parameters (the session options), order-free."""
    canonical = json.dumps(dict(sorted(parameters.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class StreamTokens:
    """Mints and redeems stream tokens with one key."""

    def __init__(self, key: bytes, ttl_s: float) -> None:
        self._key = key
        self.ttl_s = ttl_s
        self._redeemed: OrderedDict[str, float] = OrderedDict()  # jti -> expiry

    def mint(self, provider: str, call_id: str, parameters: Mapping[str, str]) -> str:
        """A token for ``provider``'s call ``call_id`` whose stream carries ``parameters``."""
        now = time.time()
        claims = {
            "aud": AUDIENCE,
            "sub": call_id,
            "prv": provider,
            "opt": parameters_digest(parameters),
            "jti": secrets.token_urlsafe(12),
            "iat": int(now),
            "exp": now + self.ttl_s,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def redeem(
        self,
        token: str | None,
        provider: str,
        parameters: Mapping[str, str],
        call_id: str | None = None,
    ) -> str:
        """The call id of a valid, unused token minted for ``provider`` with these
        ``parameters`` (and ``call_id``, when the provider's stream says which call it is);
        UnauthenticatedError (``stream_token_*``) otherwise. A token redeems once."""
        if not token:
            raise UnauthenticatedError(
                "the stream carries no token: open it from the voice webhook's answer",
                code="stream_token_missing",
            )
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "jti", "prv", "opt"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError(
                "the stream token has expired", code="stream_token_expired"
            ) from None
        except jwt.PyJWTError:
            raise UnauthenticatedError(
                "the stream token is not valid", code="stream_token_invalid"
            ) from None
        matches = (
            claims["prv"] == provider
            and hmac.compare_digest(str(claims["opt"]), parameters_digest(parameters))
            and (call_id is None or claims["sub"] == call_id)
        )
        if not matches:
            raise UnauthenticatedError(
                "the stream token is for another call", code="stream_token_invalid"
            )
        self._forget_expired()
        jti = str(claims["jti"])
        if jti in self._redeemed:
            raise UnauthenticatedError(
                "the stream token was used already", code="stream_token_used"
            )
        self._redeemed[jti] = float(claims["exp"])
        while len(self._redeemed) > MAX_REDEEMED:
            self._redeemed.popitem(last=False)
        return str(claims["sub"])

    def _forget_expired(self) -> None:
        now = time.time()
        while self._redeemed and next(iter(self._redeemed.values())) < now:
            self._redeemed.popitem(last=False)
