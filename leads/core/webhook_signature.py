"""Signing of the webhook's requests as the Standard Webhooks specification says (v1, symmetric), so a receiver
verifies with the `standardwebhooks` library of its language instead of code of its own.

Spec (https://github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md, "Signature scheme"):
- headers `webhook-id`, `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`;
- signed content `{webhook-id}.{webhook-timestamp}.{raw body}`, HMAC-SHA256;
- the secret is `whsec_` + base64 of 24 to 64 random bytes; the HMAC key is those bytes;
- `webhook-signature` holds one or more space-separated `v1,<base64 signature>`: we sign once per configured
  secret, so during a rotation a receiver holding either the old or the new secret verifies.

The id is the lead id, the same on every re-send of the lead: the spec's idempotency key. Lead ids hold
no `.` (leads/core/keys.py), as the spec requires of an id that is part of the signed content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from leads.core.errors import SettingsError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_KEY_BYTES = 24  # the spec: "at least 24 bytes (192 bits, 512 maximum)"
MAX_KEY_BYTES = 64
# How to make a secret, not one:
SECRET_COMMAND = "python -c \"import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""  # noqa: S105, E501


def signing_keys(value: str, setting: str = "LEADS_WEBHOOK_SECRET") -> tuple[bytes, ...]:
    """The HMAC keys of a setting holding one or more space-separated `whsec_` secrets. Raises SettingsError
    with a sentence that never quotes the value.

    A secret without `whsec_` is refused rather than used as raw bytes: each library's default constructor
    base64-decodes the secret it is given (Python's silently drops characters outside the alphabet), so a raw
    secret would verify only with each library's raw option and fail everywhere else with no hint why."""
    keys: list[bytes] = []
    for position, secret in enumerate(value.split(), start=1):
        which = f"secret {position} of {setting}" if len(value.split()) > 1 else setting
        if not secret.startswith(SECRET_PREFIX):
            raise SettingsError(
                f"{which} is not a Standard Webhooks secret (whsec_ followed by base64): create one with "
                f"{SECRET_COMMAND} and give the receiver the same value.")
        encoded = secret[len(SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError(
                f"{which} is not valid base64 after whsec_ (only A-Z, a-z, 0-9, + and / are allowed): create one "
                f"with {SECRET_COMMAND}.") from None
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise SettingsError(
                f"{which} holds {len(key)} bytes; the Standard Webhooks specification wants {MIN_KEY_BYTES} to "
                f"{MAX_KEY_BYTES} random bytes: create one with {SECRET_COMMAND}.")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `body` sent as `msg_id` at `timestamp` (Unix seconds)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signature_header(keys: tuple[bytes, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per key, space-separated (a rotation sends both)."""
    return " ".join(signature(key, msg_id, timestamp, body) for key in keys)
