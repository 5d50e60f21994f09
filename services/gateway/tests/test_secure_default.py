"""Secure by default: a gateway other machines can reach never runs without token keys."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings

NO_KEYS = AuthSettings.model_construct()


def test_a_public_address_without_keys_is_refused() -> None:
    with pytest.raises(RuntimeError, match="PARLEY_JWT_SECRET"):
        create_app(GatewaySettings(http_host="0.0.0.0"), NO_KEYS)
    with pytest.raises(RuntimeError, match="reachable from other machines"):
        create_app(GatewaySettings(http_host="10.1.2.3"), NO_KEYS)
    keyed = AuthSettings(secret=SecretStr("s" * 32))
    assert create_app(GatewaySettings(http_host="0.0.0.0"), keyed)
    assert create_app(GatewaySettings(http_host="127.0.0.1"), NO_KEYS)


def test_the_gateway_process_says_why_it_will_not_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_JWT_", "GATEWAY_"))}
    env["GATEWAY_HTTP_HOST"] = "0.0.0.0"
    done = subprocess.run(
        [sys.executable, "-m", "parley_gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",  # no .env of a checkout
    )
    assert done.returncode != 0
    assert "PARLEY_JWT_SECRET" in done.stderr
