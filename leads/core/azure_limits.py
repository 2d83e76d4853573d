"""Azure Storage's size limits, counted in the service's own units. Plain Python: no Azure imports.

Tables (docs/stack.md, "Scalability targets for Table storage"): a string property is UTF-16 and at most
64 KiB; a binary property at most 64 KiB; an entity at most 1 MiB and 252 properties of its own (besides
PartitionKey, RowKey, Timestamp); a batch at most 100 entities and 4 MiB. The entity size is estimated
the way the service documents it: 4 bytes + 2 per character of PartitionKey and RowKey + for each
property 8 bytes + 2 per character of its name + its value (string: 2 per UTF-16 code unit + 4; binary:
its bytes + 4; DateTime, Double, Int64: 8; Guid: 16; Int32: 4; Boolean: 1).

Queues (docs/stack.md, REST "Put Message"): a message is at most 64 KiB as sent; the Functions host reads
base64 (host.json messageEncoding), so the limit applies to the base64 of the message's UTF-8 bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

MAX_STRING_BYTES = 64 * 1024  # UTF-16: 32,768 code units
MAX_BINARY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_OWN_PROPERTIES = 252
MAX_BATCH_ENTITIES = 100
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024  # after base64

# What this app writes per property: a little under the limits, so a chunk never sits on the edge.
STRING_CHUNK_UNITS = 30_000
BINARY_CHUNK_BYTES = 32 * 1024

_SYSTEM_PROPERTIES = frozenset({"PartitionKey", "RowKey", "Timestamp"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf16_units(text: str) -> int:
    """Code units of `text` in UTF-16: characters beyond the BMP (an emoji) count two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def chunk_utf16(text: str, max_units: int = STRING_CHUNK_UNITS) -> list[str]:
    """`text` in pieces of at most `max_units` UTF-16 code units each; a surrogate pair (a character beyond
    the BMP, one Python character) is never split."""
    if max_units < 2:
        raise ValueError("a chunk must hold at least one surrogate pair")
    if _LONE_SURROGATE.search(text):  # rare (the parser replaces them): slow, but never pairs two lone ones
        return _chunk_by_character(text, max_units)
    encoded = text.encode("utf-16-le")
    chunks: list[str] = []
    start = 0
    while True:
        end = min(start + 2 * max_units, len(encoded))
        if end < len(encoded) and 0xD8 <= encoded[end - 1] <= 0xDB:  # ends on a high surrogate: keep the pair
            end -= 2
        chunks.append(encoded[start:end].decode("utf-16-le"))
        if end >= len(encoded):
            return chunks
        start = end


def _chunk_by_character(text: str, max_units: int) -> list[str]:
    chunks: list[str] = []
    start, units = 0, 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if units + width > max_units:
            chunks.append(text[start:index])
            start, units = index, 0
        units += width
    chunks.append(text[start:])
    return chunks


def without_lone_surrogates(text: str) -> str:
    """Lone surrogates (from JSON escapes such as \\ud800) cannot be encoded as UTF-8 or sent to Azure:
    each becomes U+FFFD, the replacement character."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def value_size(value: Any, edm_type: str = "") -> int:
    """Bytes the service counts for one property value (see the module's docstring)."""
    if edm_type in ("Edm.DateTime", "Edm.Int64", "Edm.Double"):
        return 8
    if edm_type == "Edm.Guid":
        return 16
    if isinstance(value, bool):
        return 1
    if isinstance(value, (bytes, bytearray)):
        return len(value) + 4
    if isinstance(value, str):
        return 2 * utf16_units(value) + 4
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, (float, datetime)):
        return 8
    return 16  # a UUID: the only other type the SDK writes


def entity_size(entity: dict[str, Any], edm_types: dict[str, str] | None = None) -> int:
    types = edm_types or {}
    size = 4 + 2 * (len(str(entity.get("PartitionKey", ""))) + len(str(entity.get("RowKey", ""))))
    for name, value in entity.items():
        if name not in _SYSTEM_PROPERTIES and value is not None:
            size += 8 + 2 * len(name) + value_size(value, types.get(name, ""))
    return size


def entity_problem(entity: dict[str, Any], edm_types: dict[str, str] | None = None) -> str:
    """Why Azure would refuse to store `entity` (its error code first), or "" when it would not."""
    types = edm_types or {}
    own = [name for name in entity if name not in _SYSTEM_PROPERTIES]
    if len(own) > MAX_OWN_PROPERTIES:
        return f"TooManyProperties: {len(own)} properties (at most {MAX_OWN_PROPERTIES})"
    for name in own:
        value = entity[name]
        if isinstance(value, str) and not types.get(name) and 2 * utf16_units(value) > MAX_STRING_BYTES:
            return f"PropertyValueTooLarge: string {name!r} is {2 * utf16_units(value)} bytes in UTF-16"
        if isinstance(value, (bytes, bytearray)) and len(value) > MAX_BINARY_BYTES:
            return f"PropertyValueTooLarge: binary {name!r} is {len(value)} bytes"
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            # Azure's answer is not documented; the text is not valid UTF-16 anyway, so it is refused here.
            return f"LoneSurrogate: string {name!r} is not valid UTF-16"
    size = entity_size(entity, types)
    if size > MAX_ENTITY_BYTES:
        return f"EntityTooLarge: {size} bytes (at most {MAX_ENTITY_BYTES})"
    return ""


def base64_length(byte_count: int) -> int:
    return 4 * ((byte_count + 2) // 3)


def queue_message_fits(text: str) -> bool:
    """Whether `text`, sent as base64 of its UTF-8 bytes, is within the queue's limit. A text that is not
    encodable (a lone surrogate) does not fit anywhere."""
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return base64_length(len(encoded)) <= MAX_QUEUE_MESSAGE_BYTES
