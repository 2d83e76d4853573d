"""A binary value kept over numbered properties (`Body0`, `Body1`, …): Azure Tables hold at most 64 KiB per
property. Plain Python, shared by the table adapter and the management views."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def joined_bytes(entity: Mapping[str, Any], prefix: str = "Body") -> bytes:
    parts, index = [], 0
    while f"{prefix}{index}" in entity:
        parts.append(bytes(entity[f"{prefix}{index}"]))
        index += 1
    return b"".join(parts)
