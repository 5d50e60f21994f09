"""Stream tokens: one provider, one call, the stream's exact parameters, a minute, once; and
the key they are signed with."""

from __future__ import annotations

import time

import jwt
import pytest

from parley_common.errors import UnauthenticatedError
from parley_gateway.telephony.stream_tokens import AUDIENCE, StreamTokens, stream_key

PARAMS = {"chatbot_id": "support", "voice": "joe"}


def _tokens(ttl_s: float = 60.0) -> StreamTokens:
    return StreamTokens(b"k" * 32, ttl_s)


def _refused(
    code: str,
    tokens: StreamTokens,
    token: str | None,
    *,
    provider: str = "twilio",
    params: dict[str, str] = PARAMS,
    call_id: str | None = None,
) -> None:
    with pytest.raises(UnauthenticatedError) as refused:
        tokens.redeem(token, provider, params, call_id)
    assert refused.value.code == code


def test_a_token_redeems_once_for_its_call() -> None:
    tokens = _tokens()
    token = tokens.mint("twilio", "CA1", PARAMS)
    # The parameters' order is not part of what was signed.
    assert tokens.redeem(token, "twilio", dict(reversed(PARAMS.items())), "CA1") == "CA1"
    _refused("stream_token_used", tokens, token, call_id="CA1")


def test_a_token_is_bound_to_provider_call_and_parameters() -> None:
    tokens = _tokens()
    token = tokens.mint("twilio", "CA1", PARAMS)
    _refused("stream_token_invalid", tokens, token, provider="telnyx")
    _refused("stream_token_invalid", tokens, token, call_id="CA2")
    _refused("stream_token_invalid", tokens, token, params={**PARAMS, "voice": "amy"})
    _refused("stream_token_invalid", tokens, token, params={"chatbot_id": "support"})
    # Without a call id to compare (Telnyx), the rest still binds it.
    assert tokens.redeem(token, "twilio", PARAMS) == "CA1"


def test_missing_forged_and_expired_tokens_are_refused() -> None:
    tokens = _tokens()
    _refused("stream_token_missing", tokens, None)
    _refused("stream_token_missing", tokens, "")
    _refused("stream_token_invalid", tokens, "not.a.token")
    other = StreamTokens(b"x" * 32, 60).mint("twilio", "CA1", PARAMS)
    _refused("stream_token_invalid", tokens, other, call_id="CA1")
    # A Parley API token signed with the same key is for another audience.
    api = jwt.encode({"sub": "CA1", "exp": time.time() + 60}, b"k" * 32, algorithm="HS256")
    _refused("stream_token_invalid", tokens, api, call_id="CA1")
    short = _tokens(ttl_s=0.01)
    stale = short.mint("twilio", "CA1", PARAMS)
    time.sleep(0.05)
    _refused("stream_token_expired", short, stale, call_id="CA1")


def test_tokens_are_for_the_stream_audience_and_short_lived() -> None:
    token = _tokens(ttl_s=60).mint("telnyx", "v3:abc", PARAMS)
    claims = jwt.decode(token, b"k" * 32, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["prv"] == "telnyx"
    assert claims["sub"] == "v3:abc"
    assert 59 <= claims["exp"] - time.time() <= 60


def test_the_signing_key() -> None:
    assert stream_key("shared-telephony-secret", "jwt-secret") == b"shared-telephony-secret"
    derived = stream_key(None, "a-jwt-secret-of-at-least-32-characters!")
    assert derived == stream_key(None, "a-jwt-secret-of-at-least-32-characters!")  # replicas
    assert derived != b"a-jwt-secret-of-at-least-32-characters!"
    assert derived != stream_key(None, "another-jwt-secret-of-32-characters!!")
    assert stream_key(None, None) != stream_key(None, None)  # random, this process only
