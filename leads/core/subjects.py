"""Who a privacy request is about: the address as given, and where a record names it. Plain Python."""

from __future__ import annotations

import json
import re
from contextlib import suppress

from leads.core.errors import BadRequestError

EMAIL_PATTERN = r"^[^\s@]+@[^\s@]+$"  # the OpenAPI description says the same (leads/manage/openapi.py)
EMAIL_MAX = 320
FORGET_COUNTS = ("leads", "markers", "outbox", "attention", "quarantined", "held", "spool_files", "queue_messages")


def checked_email(email: str) -> str:
    if len(email) > EMAIL_MAX or not re.fullmatch(EMAIL_PATTERN, email):
        raise BadRequestError("Give the person's e-mail address, such as name@example.com (no spaces, at most "
                              f"{EMAIL_MAX} characters).", parameter="email")
    return email


def normalized(email: str) -> str:
    return email.strip().casefold()


def mentions(body: bytes, email: str) -> bool:
    """Whether a body as received names the address: as sent, or once JSON escapes are read."""
    needle = normalized(email)
    text = body.decode("utf-8", "replace")
    if needle in text.casefold():
        return True
    with suppress(ValueError, RecursionError):
        return needle in json.dumps(json.loads(text), ensure_ascii=False).casefold()
    return False
