"""Field mappings from a stored lead to a destination's fields, changeable by a JSON setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from leads.core.errors import SettingsError
from leads.core.model import StoredLead


def lead_value(stored: StoredLead, path: str) -> Any:
    """Resolve a dotted path: `customer.first_name`, `campaign.mktcmpid`, `lead_source.raw`, `id`,
    `received_at`, `action_meaning`, `offer_name`, `extra.SomeField`. Missing values are ''."""
    if path == "id":
        return stored.id
    if path == "received_at":
        return stored.received_at.isoformat()
    value: Any = stored.lead
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else getattr(value, part, "")
    return value


def field_map(default: dict[str, str], override_json: str, setting: str) -> dict[str, str]:
    """Start from `default`; the setting's JSON object adds fields, changes them, or drops them (null)."""
    if not override_json:
        return dict(default)
    try:
        override = json.loads(override_json)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{setting} is not valid JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(override, dict) or not all(
        isinstance(v, str) or v is None for v in override.values()
    ):
        raise SettingsError(
            f'{setting} must be a JSON object of field name to lead path, e.g. {{"jobtitle": "customer.title"}}'
            " (null removes a field)."
        )
    merged = dict(default)
    for name, path in override.items():
        if path is None:
            merged.pop(name, None)
        else:
            merged[name] = path
    return merged


def map_fields(stored: StoredLead, mapping: dict[str, str],
               resolve: Callable[[StoredLead, str], Any] = lead_value) -> dict[str, Any]:
    """The destination's fields, leaving out empty values (a CRM would store an empty string). `resolve`
    turns a mapping's value into the field's value: `lead_value` unless the destination has paths of its own."""
    out: dict[str, Any] = {}
    for name, path in mapping.items():
        value = resolve(stored, path)
        if value not in ("", None):
            out[name] = value
    return out
