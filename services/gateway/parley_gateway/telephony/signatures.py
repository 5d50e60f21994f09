"""Webhook signatures: the only authentication of the providers' requests (they cannot send
a Parley token). Twilio: HMAC over the URL and the form parameters, checked with the
``twilio`` SDK's validator. Telnyx: Ed25519 over ``{timestamp}|{body}``."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    get_signature_algorithm,
)

TWILIO_SIGNATURE = "X-Twilio-Signature"
TWILIO_SIGNATURE_SETTINGS = "X-Twilio-Webhooks-Signature-Settings"
TELNYX_SIGNATURE = "telnyx-signature-ed25519"
TELNYX_TIMESTAMP = "telnyx-timestamp"
# A Telnyx webhook older (or newer) than this is refused: a recorded one cannot be replayed.
TELNYX_TOLERANCE_S = 300.0


class _FormParameters:
    """Form parameters as the SDK's validator reads them (``getlist``, as Django's)."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[str]:
        return iter({name for name, _ in self._items})

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]


def twilio_signature_valid(
    auth_token: str,
    url: str,
    form: Sequence[tuple[str, str]],
    signature: str | None,
    settings_header: str | None = None,
) -> bool:
    """Whether ``signature`` (``X-Twilio-Signature``) signs a request to ``url`` (the full
    URL Twilio called, query included) with these form parameters."""
    if not signature:
        return False
    validator = RequestValidator(auth_token)
    algorithm = get_signature_algorithm(settings_header)
    return bool(validator.validate(url, _FormParameters(form), signature, algorithm))


def telnyx_public_key(encoded: str) -> Ed25519PublicKey:
    """The account's public key as the Telnyx portal shows it (base64 of 32 bytes); a
    ValueError for anything else."""
    try:
        raw = base64.b64decode(encoded, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key") from exc


def telnyx_signature_valid(
    key: Ed25519PublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (``telnyx-signature-ed25519``, base64) signs
    ``{timestamp}|{body}`` with ``key``, ``timestamp`` (``telnyx-timestamp``, Unix seconds)
    being within TELNYX_TOLERANCE_S of now."""
    if not signature or not timestamp:
        return False
    try:
        sent_at = int(timestamp)
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    now = time.time() if now is None else now
    if abs(now - sent_at) > TELNYX_TOLERANCE_S:
        return False
    try:
        key.verify(raw, timestamp.encode() + b"|" + body)
    except InvalidSignature:
        return False
    return True


def form_items(items: Sequence[tuple[str, object]]) -> list[tuple[str, str]]:
    """The text fields of a parsed form, in order (files are not part of a webhook)."""
    return [(name, value) for name, value in items if isinstance(value, str)]
