"""Signing of the webhook's requests, and the check a receiver makes. Standard library only, so a receiver
can copy this file as it is.

The sender computes `HMAC-SHA256(secret, f"{timestamp}." + body)` over the exact bytes it sends and puts
it in `X-Leads-Signature: sha256=<hex>`, with the Unix time in `X-Leads-Timestamp`. The receiver
recomputes it over the raw body (before any JSON parsing), compares in constant time, and refuses a
timestamp outside its replay window, so a captured request cannot be sent again later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Leads-Signature"
TIMESTAMP_HEADER = "X-Leads-Timestamp"
ID_HEADER = "X-Leads-Id"  # the lead's id: the same on every redelivery of the lead (an idempotency key)
SCHEME = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Leads-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """True when `signature` (the X-Leads-Signature header) is ours for this `body` and `timestamp` (the
    X-Leads-Timestamp header), and the timestamp is within `tolerance` seconds of now."""
    if not secret or not (timestamp.isascii() and timestamp.isdigit()) or not signature.startswith(SCHEME):
        return False
    moment = int(timestamp)
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, moment, body).encode("ascii"), signature.strip().encode("utf-8"))
