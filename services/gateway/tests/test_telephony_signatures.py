"""Webhook signatures: Twilio's HMAC (computed here from Twilio's documented recipe, not by
the SDK that checks it) and Telnyx's Ed25519 over ``{timestamp}|{body}``; every change to
what was signed, a missing or stale signature, and the wrong key are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from parley_gateway.telephony.signatures import (
    form_items,
    telnyx_public_key,
    telnyx_signature_valid,
    twilio_signature_valid,
)

TOKEN = "12345-twilio-auth-token"
URL = "https://voice.example.com/telephony/twilio/voice?chatbot_id=support&voice=joe"
FORM = [
    ("CallSid", "CA1234567890ABCDE"),
    ("From", "+14158675310"),
    ("To", "+18005551212"),
    ("CallStatus", "ringing"),
]


def documented_signature(token: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's recipe: the URL, then each parameter's name and value sorted by name,
    HMAC-SHA1 with the auth token, base64."""
    data = url + "".join(name + value for name, value in sorted(form))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_twilio_accepts_its_own_signature() -> None:
    signature = documented_signature(TOKEN, URL, FORM)
    assert twilio_signature_valid(TOKEN, URL, FORM, signature)
    # The order the form arrives in does not matter; Twilio sorts.
    assert twilio_signature_valid(TOKEN, URL, list(reversed(FORM)), signature)
    # Twilio may sign the URL with its default port spelled out.
    with_port = URL.replace("voice.example.com", "voice.example.com:443")
    assert twilio_signature_valid(TOKEN, URL, FORM, documented_signature(TOKEN, with_port, FORM))


@pytest.mark.parametrize(
    ("token", "url", "form"),
    [
        ("another-auth-token", URL, FORM),
        (TOKEN, URL.replace("voice=joe", "voice=amy"), FORM),
        (TOKEN, URL.split("?")[0], FORM),
        (TOKEN, URL, [*FORM[:-1], ("CallStatus", "in-progress")]),
        (TOKEN, URL, [*FORM, ("Digits", "1")]),
    ],
    ids=["other-token", "other-query", "no-query", "changed-field", "added-field"],
)
def test_twilio_refuses_anything_else_signed(
    token: str, url: str, form: list[tuple[str, str]]
) -> None:
    assert not twilio_signature_valid(TOKEN, URL, FORM, documented_signature(token, url, form))


def test_twilio_refuses_a_missing_or_malformed_signature() -> None:
    assert not twilio_signature_valid(TOKEN, URL, FORM, None)
    assert not twilio_signature_valid(TOKEN, URL, FORM, "")
    assert not twilio_signature_valid(TOKEN, URL, FORM, "not-base64!")


def test_form_items_keep_the_text_fields() -> None:
    assert form_items([("a", "1"), ("file", object()), ("b", "2")]) == [("a", "1"), ("b", "2")]


KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
BODY = b"CallSid=v3%3Aabc&From=%2B15005550006&To=%2B15005550001"


def telnyx_sign(key: Ed25519PrivateKey, body: bytes, timestamp: str) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + b"|" + body)).decode()


def test_telnyx_accepts_its_own_signature() -> None:
    now = time.time()
    stamp = str(int(now))
    assert telnyx_signature_valid(
        telnyx_public_key(PUBLIC), BODY, telnyx_sign(KEY, BODY, stamp), stamp, now
    )


def test_telnyx_refuses_another_body_timestamp_or_key() -> None:
    key = telnyx_public_key(PUBLIC)
    now = time.time()
    stamp = str(int(now))
    signature = telnyx_sign(KEY, BODY, stamp)
    assert not telnyx_signature_valid(key, BODY + b"&Digits=1", signature, stamp, now)
    assert not telnyx_signature_valid(key, BODY, signature, str(int(now) + 1), now)
    other = telnyx_sign(Ed25519PrivateKey.generate(), BODY, stamp)
    assert not telnyx_signature_valid(key, BODY, other, stamp, now)


def test_telnyx_refuses_a_stale_or_future_webhook() -> None:
    key = telnyx_public_key(PUBLIC)
    now = time.time()
    old = str(int(now) - 301)
    assert not telnyx_signature_valid(key, BODY, telnyx_sign(KEY, BODY, old), old, now)
    ahead = str(int(now) + 301)
    assert not telnyx_signature_valid(key, BODY, telnyx_sign(KEY, BODY, ahead), ahead, now)
    recent = str(int(now) - 299)
    assert telnyx_signature_valid(key, BODY, telnyx_sign(KEY, BODY, recent), recent, now)


def test_telnyx_refuses_missing_or_malformed_headers() -> None:
    key = telnyx_public_key(PUBLIC)
    stamp = str(int(time.time()))
    signature = telnyx_sign(KEY, BODY, stamp)
    assert not telnyx_signature_valid(key, BODY, None, stamp)
    assert not telnyx_signature_valid(key, BODY, signature, None)
    assert not telnyx_signature_valid(key, BODY, "%%%", stamp)
    assert not telnyx_signature_valid(key, BODY, signature, "yesterday")


@pytest.mark.parametrize("encoded", ["not base64 at all", base64.b64encode(b"short").decode()])
def test_a_bad_telnyx_public_key_is_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="TELNYX_PUBLIC_KEY"):
        telnyx_public_key(encoded)
