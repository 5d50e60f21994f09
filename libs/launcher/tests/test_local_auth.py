"""The local secret of `parley up` and `parley token`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from parley_common.tokens import AuthSettings, TokenVerifier
from parley_launcher.cli import main
from parley_launcher.local_auth import ensure_local_secret, page_token, secret_path


def _verify(secret: str, token: str) -> str | None:
    return TokenVerifier(AuthSettings(secret=SecretStr(secret))).verify(token).user_id


def test_the_secret_is_created_once_private_and_given_to_the_services(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    secret = ensure_local_secret(tmp_path, env)
    assert secret is not None
    assert len(secret) >= 32
    assert env["PARLEY_JWT_SECRET"] == secret
    assert secret_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert ensure_local_secret(tmp_path, {}) == secret  # the next `parley up` keeps it
    assert _verify(secret, page_token(secret)) == "local"


def test_a_configured_key_is_kept(tmp_path: Path) -> None:
    env = {"PARLEY_JWT_SECRET": "x" * 40}
    assert ensure_local_secret(tmp_path, env) == "x" * 40
    assert not secret_path(tmp_path).exists()
    assert ensure_local_secret(tmp_path, {"PARLEY_JWT_JWKS_FILE": "/keys.json"}) is None
    assert not secret_path(tmp_path).exists()


def test_parley_token_mints_for_a_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARLEY_JWT_SECRET", raising=False)
    with pytest.raises(SystemExit) as missing:
        main(["token", "--user", "ann", "--data-dir", str(tmp_path)])
    assert missing.value.code == 1
    assert "parley up" in capsys.readouterr().err
    secret = ensure_local_secret(tmp_path, {})
    assert secret is not None
    with pytest.raises(SystemExit) as done:
        main(["token", "--user", "ann", "--admin", "--data-dir", str(tmp_path)])
    assert done.value.code == 0
    token = capsys.readouterr().out.strip()
    principal = TokenVerifier(AuthSettings(secret=SecretStr(secret))).verify(token)
    assert principal.user_id == "ann"
    assert principal.admin
