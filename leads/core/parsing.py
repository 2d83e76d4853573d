"""Partner Center's lead payload -> `Lead`. Tolerant of casing and shape, precise about what is wrong.

Accepted shapes (docs/marketplace-leads.md §1-3): the documented PascalCase body, the camelCase body sent in
practice, and a row as Partner Center writes it to an "Azure Table" destination (CustomerInfo as a JSON
string). Keys are matched case-insensitively; unknown fields are kept in `Lead.extra`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from leads.core.azure_limits import without_lone_surrogates
from leads.core.errors import LeadValidationError
from leads.core.model import TEST_MARKER, Customer, Lead, LeadSource

MAX_BODY_BYTES = 64 * 1024
MAX_NESTING = 32

_CUSTOMER_FIELDS = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "phone": "phone",
    "country": "country",
    "company": "company",
    "title": "title",
}
_TOP_LEVEL_STRINGS = {"leadsource", "actioncode", "offertitle", "description", "offerdisplayname"}
_CUSTOMER_KEYS = {"userdetails", "customerinfo"}
_CAMPAIGN_PREFIX = re.compile(r"^\s*campaigns?\s*:\s*", re.IGNORECASE)


def parse_lead(body: bytes) -> Lead:
    """Parse a request body. Raises only `LeadValidationError` (status 400 or 413)."""
    if len(body) > MAX_BODY_BYTES:
        raise LeadValidationError(
            f"The body is {len(body)} bytes; a lead is at most {MAX_BODY_BYTES} bytes.",
            status=413,
            reason="too_large",
        )
    document = _decode_json(body)
    if not isinstance(document, dict):
        raise LeadValidationError(
            f"The body must be a JSON object ({{...}}), not {_json_type(document)}.", reason="not_an_object"
        )
    if _depth(document) > MAX_NESTING:
        raise LeadValidationError(
            f"The body is nested more than {MAX_NESTING} levels deep; a lead is a flat object.", reason="too_deep"
        )
    return _lead_from_object(_clean(document))


def _clean(value: Any) -> Any:
    """Lone surrogates (`"\\ud800"` is valid JSON) in keys and values become U+FFFD: such text cannot be
    stored, queued or sent. The raw body is kept with the lead, so nothing is lost."""
    if isinstance(value, str):
        return without_lone_surrogates(value)
    if isinstance(value, dict):
        return {without_lone_surrogates(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _depth(document: Any) -> int:
    """Nesting depth, computed without recursion (the parser above may return ~1000 levels)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return deepest


def _decode_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LeadValidationError(
            f"The body is not UTF-8 text: invalid byte at position {exc.start}.", reason="not_utf8"
        ) from None
    if not text.strip():
        raise LeadValidationError("The body is empty: send the lead as a JSON object.", reason="empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Expecting ',' delimiter":
            hint = " (a comma is probably missing at the end of the previous value)"
        raise LeadValidationError(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}.",
            reason="invalid_json",
            where=f"line {exc.lineno}, column {exc.colno}",
        ) from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, over-long integers, absurd nesting
        raise LeadValidationError(f"The body is not valid JSON: {exc}.", reason="invalid_json") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _text(value: Any, field: str, *, numbers_allowed: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    # A phone number sent as a JSON number is still a phone number; keep it rather than lose the lead.
    if numbers_allowed and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise LeadValidationError(
        f"Field {field!r} must be a string, not {_json_type(value)}.", reason="wrong_type", where=field
    )


def _lead_from_object(document: dict[str, Any]) -> Lead:
    fields: dict[str, tuple[str, Any]] = {}  # lower-case key -> (key as sent, value); first one wins
    extra: dict[str, Any] = {}
    for key, value in document.items():
        lowered = key.lower()
        if lowered in _TOP_LEVEL_STRINGS or lowered in _CUSTOMER_KEYS:
            fields.setdefault(lowered, (key, value))
        else:
            extra[key] = value

    strings = {name: _text(value, key) for name, (key, value) in fields.items() if name in _TOP_LEVEL_STRINGS}
    customer, customer_extra = _customer(fields)
    extra.update(customer_extra)
    description = strings.get("description", "")
    lead_source = _lead_source(strings.get("leadsource", ""))
    return Lead(
        customer=customer,
        lead_source=lead_source,
        action_code=strings.get("actioncode", ""),
        offer_title=strings.get("offertitle", "") or strings.get("offerdisplayname", ""),
        description=description,
        campaign=_campaign(description),
        is_test=_mentions_test_marker(document),
        is_edu=_is_edu(customer.email),
        extra=extra,
    )


def _customer(fields: dict[str, tuple[str, Any]]) -> tuple[Customer, dict[str, Any]]:
    if "userdetails" in fields:
        key, details = fields["userdetails"]
    elif "customerinfo" in fields:
        key, details = fields["customerinfo"]
        if isinstance(details, str) and details.strip():
            # The Azure Table destination stores CustomerInfo as a JSON string (docs/marketplace-leads.md §3).
            try:
                details = _clean(json.loads(details))  # its escapes may hold lone surrogates too
            except (ValueError, RecursionError):
                raise LeadValidationError(
                    f"Field {key!r} must hold a JSON object (as text); it does not parse.",
                    reason="wrong_type",
                    where=key,
                ) from None
        elif isinstance(details, str):
            details = None
    else:
        return Customer(), {}
    if details is None:
        return Customer(), {}
    if not isinstance(details, dict):
        raise LeadValidationError(
            f"Field {key!r} must be an object, not {_json_type(details)}.", reason="wrong_type", where=key
        )
    values: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for inner_key, value in details.items():
        attribute = _CUSTOMER_FIELDS.get(inner_key.lower())
        path = f"{key}.{inner_key}"
        if attribute is None:
            extra[path] = value
        elif attribute not in values:
            values[attribute] = _text(value, path, numbers_allowed=attribute == "phone")
    if "email" in values:
        values["email"] = values["email"].lower()
    return Customer(**values), extra


def _lead_source(raw: str) -> LeadSource:
    """`Source-Action|publisher.offer` (documented) or just `AzureMarketplace` (sent)."""
    left, _, offer = raw.partition("|")
    source, _, action = left.partition("-")
    return LeadSource(raw=raw, source=source.strip(), action=action.strip(), offer=offer.strip())


def _campaign(description: str) -> dict[str, str]:
    """Campaign parameters, when Description carries them: a JSON object (AppSource URL parameters such
    as mktcmpid, partnerid) or `Campaigns: key=value&key=value`."""
    text = description.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return {}
        if isinstance(parsed, dict):
            return {str(k): str(v) for k, v in parsed.items() if isinstance(v, (str, int, float)) and str(v)}
        return {}
    match = _CAMPAIGN_PREFIX.match(text)
    if not match:
        return {}
    pairs = re.split(r"[&;,]", text[match.end() :])
    campaign: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if sep and key.strip() and value.strip():
            campaign[key.strip()] = value.strip()
    return campaign


def _mentions_test_marker(value: Any) -> bool:
    if isinstance(value, str):
        return TEST_MARKER in value.upper()
    if isinstance(value, dict):
        return any(_mentions_test_marker(k) or _mentions_test_marker(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_mentions_test_marker(v) for v in value)
    return False


def _is_edu(email: str) -> bool:
    """`.edu` (or `.edu.<country>`) domains: Microsoft withholds their personal data (FAQ)."""
    domain = email.rpartition("@")[2]
    labels = domain.split(".")
    return "@" in email and len(labels) >= 2 and (labels[-1] == "edu" or labels[-2] == "edu")
