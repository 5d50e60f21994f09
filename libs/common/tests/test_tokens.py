"""Token verification: what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from parley_common.errors import UnauthenticatedError
from parley_common.tokens import AuthSettings, TokenVerifier, mint_token, new_secret

SECRET = new_secret()


def _hs(**kw: Any) -> TokenVerifier:
    return TokenVerifier(AuthSettings(secret=SecretStr(SECRET), **kw))


def _refused(verifier: TokenVerifier, token: str | None, code: str) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        verifier.verify(token)
    assert caught.value.code == code
    if token:
        assert token not in caught.value.message


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_minted_token_names_its_user_and_scopes() -> None:
    token = mint_token(SECRET, "alice", scopes=["parley:admin", "other"])
    principal = _hs().verify(token)
    assert principal.user_id == "alice"
    assert principal.admin
    assert principal.scopes == {"parley:admin", "other"}
    assert not _hs().verify(mint_token(SECRET, "bob")).admin


def test_without_keys_everyone_is_let_in_unfiltered() -> None:
    verifier = TokenVerifier(AuthSettings.model_construct())
    assert not verifier.enabled
    principal = verifier.verify(None)
    assert principal.user_id is None
    assert principal.owns("anyone")


def test_missing_expired_and_forged_tokens_are_refused() -> None:
    verifier = _hs(leeway_s=0)
    _refused(verifier, None, "token_missing")
    _refused(verifier, "", "token_missing")
    _refused(verifier, "not.a.jwt", "token_invalid")
    _refused(verifier, mint_token(SECRET, "alice", ttl_s=-5), "token_expired")
    _refused(verifier, mint_token(new_secret(), "alice"), "token_invalid")
    # A valid token with one character of its signature changed.
    token = mint_token(SECRET, "alice")
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    _refused(verifier, forged, "token_invalid")
    # Another user's claims under the original signature.
    other = _b64({"sub": "mallory", "exp": int(time.time()) + 60})
    _refused(verifier, f"{head}.{other}.{sig}", "token_invalid")


def test_a_token_needs_exp_and_sub() -> None:
    verifier = _hs()
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    _refused(verifier, no_exp, "token_invalid")
    no_sub = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    _refused(verifier, no_sub, "token_invalid")


def test_alg_none_is_refused() -> None:
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _refused(_hs(), unsigned, "token_algorithm")
    none_lib = jwt.encode(claims, "", algorithm="none")
    _refused(_hs(), none_lib, "token_algorithm")


def test_audience_and_issuer_are_checked_when_configured() -> None:
    verifier = _hs(audience="parley", issuer="https://auth.example")
    good = mint_token(SECRET, "alice", audience="parley", issuer="https://auth.example")
    assert verifier.verify(good).user_id == "alice"
    wrong_aud = mint_token(SECRET, "alice", audience="other", issuer="https://auth.example")
    _refused(verifier, wrong_aud, "token_audience")
    wrong_iss = mint_token(SECRET, "alice", audience="parley", issuer="https://evil.example")
    _refused(verifier, wrong_iss, "token_audience")
    _refused(verifier, mint_token(SECRET, "alice"), "token_invalid")  # no aud at all


def _rsa_pem(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "public.pem"
    path.write_bytes(pem)
    return key, path


def test_rs256_with_a_public_key_file_and_no_algorithm_confusion(tmp_path: Path) -> None:
    key, path = _rsa_pem(tmp_path)
    verifier = TokenVerifier(AuthSettings(public_key=str(path)))
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    assert verifier.verify(jwt.encode(claims, key, algorithm="RS256")).user_id == "alice"
    # The attack: HMAC-sign with the public key's PEM as the secret. No secret is
    # configured, so HS256 has no key at all here.
    pem = path.read_bytes()
    confused = _hmac_token(claims, pem)
    _refused(verifier, confused, "token_algorithm")
    # With a secret configured too, the HMAC key is the secret, never the public key.
    both = TokenVerifier(AuthSettings(public_key=str(path), secret=SecretStr(SECRET)))
    _refused(both, confused, "token_invalid")


def _hmac_token(claims: dict[str, Any], key: bytes) -> str:
    import hashlib
    import hmac

    signing = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def test_es256_from_a_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    keys = {kid: ec.generate_private_key(ec.SECP256R1()) for kid in ("one", "two")}
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key())), "kid": kid}
            for kid, k in keys.items()
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = TokenVerifier(AuthSettings(jwks_file=path))
    claims = {"sub": "bob", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, keys["two"], algorithm="ES256", headers={"kid": "two"})
    assert verifier.verify(token).user_id == "bob"
    # Signed by key one but claiming to be key two.
    lying = jwt.encode(claims, keys["one"], algorithm="ES256", headers={"kid": "two"})
    _refused(verifier, lying, "token_invalid")
    # A key nobody configured.
    stranger = ec.generate_private_key(ec.SECP256R1())
    unknown = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "three"})
    _refused(verifier, unknown, "token_algorithm")


def test_a_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        AuthSettings(secret=SecretStr("short"))


def test_blank_settings_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_JWT_SECRET", SECRET)
    monkeypatch.setenv("PARLEY_JWT_AUDIENCE", "")
    monkeypatch.setenv("PARLEY_JWT_ISSUER", " ")
    settings = AuthSettings()
    assert settings.audience is None
    assert settings.issuer is None
    assert TokenVerifier(settings).verify(mint_token(SECRET, "alice")).user_id == "alice"
