"""`status` ("why do I see no leads") and `doctor` for the management API."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from leads.core.model import FAILED, utcnow
from leads.core.routing import destination_type
from leads.core.settings import Settings
from leads.manage.views import moment_text
from leads.services.context import Runtime
from leads.storage.subject_index import SubjectIndex
from leads.storage.table_store import deliveries_from_json

WINDOWS = {"24h": timedelta(hours=1 * 24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
HEALTH_SCAN = 1000  # destinations' last success and failure are read from the newest leads this many
_FAILURES = frozenset({"failed", "blocked", "retrying", "crashed"})
VALIDATE_SENTENCE = (
    "No Partner Center test lead has arrived yet. In Partner Center, on the offer's Customer leads connection, "
    "choose HTTPS endpoint with this app's /api/leads URL (its function key included) and press Validate: "
    "Partner Center sends a test lead (every field MSFT_TEST_...), and again after Publish, that should appear "
    "here within a minute. If none does, Partner Center could not reach the app, or the app refused the "
    "request: see the quarantine.")


def status_report(rt: Runtime) -> dict[str, Any]:
    now = utcnow()
    table = rt.table
    last = next(table.lead_rows(select=["Id", "ReceivedAt"], page_size=1), None)
    indexed, last_test = SubjectIndex(table).last_test_lead()  # one range query once the index is complete
    if not indexed:  # before the one-time backfill: the old way, a filter over every lead when there is none
        last_test = next(table.lead_rows({"IsTest": True}, select=["Id", "ReceivedAt"], page_size=1), None)
    counts: dict[str, dict[str, int]] = {name: {} for name in WINDOWS}
    for row in table.lead_rows(since=now - WINDOWS["30d"], select=["ReceivedAt", "Status"]):
        received = row.get("ReceivedAt")
        for name, span in WINDOWS.items():
            if isinstance(received, datetime) and received >= now - span:
                status = str(row.get("Status") or "")
                counts[name][status] = counts[name].get(status, 0) + 1
    why = _why_no_leads(rt, last, last_test, counts)
    return {
        "last_lead": _brief(last),
        "last_test_lead": _brief(last_test),
        "why_no_leads": why,
        "counts": counts,
        "destinations": _destinations(rt, now),
        "settings_ignored": dict(rt.settings.warnings),
    }


def _brief(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {"id": str(row["Id"]), "received_at": moment_text(row.get("ReceivedAt"))}


def _why_no_leads(rt: Runtime, last: dict[str, Any] | None, last_test: dict[str, Any] | None,
                  counts: dict[str, dict[str, int]]) -> list[str]:
    sentences = []
    if last is None:
        sentences.append(f"No lead has been stored yet (table {rt.settings.table}).")
    if last_test is None:
        sentences.append(VALIDATE_SENTENCE)
    if last is not None and not counts["30d"]:
        sentences.append("No lead in the last 30 days: Partner Center sends a lead only when a customer acts on "
                         "the offer (install, trial, contact me, test drive); check the offer is live and its "
                         "Customer leads connection still points at this app.")
    failing = counts["7d"].get(FAILED, 0) + counts["7d"].get("blocked", 0)
    if failing:
        sentences.append(f"{failing} lead(s) of the last 7 days are failed or blocked at a destination: they are "
                         "stored here; fix the destination (see destinations and doctor) and replay them.")
    for name, sentence in rt.settings.problems.items():
        if name in rt.settings.destinations:
            sentences.append(f"{name} receives no lead until a setting is fixed: {sentence}")
    return sentences


def _destinations(rt: Runtime, now: datetime) -> list[dict[str, Any]]:
    open_breakers = {b.destination: b for b in rt.table.breakers() if b.open_until > now}
    success: dict[str, str] = {}
    failure: dict[str, dict[str, str]] = {}
    rows = rt.table.lead_rows(select=["Deliveries"], page_size=HEALTH_SCAN)
    for _, row in zip(range(HEALTH_SCAN), rows, strict=False):
        for name, state in deliveries_from_json(str(row.get("Deliveries") or "{}")).items():
            if state.delivered_at and state.delivered_at > success.get(name, ""):
                success[name] = state.delivered_at
            for entry in state.history:
                if entry.get("outcome") in _FAILURES and entry.get("at", "") > failure.get(name, {}).get("at", ""):
                    failure[name] = {"at": entry["at"], "sentence": entry.get("sentence", "")}
    routing = rt.settings.routing
    return [{
        "name": name,
        "type": destination_type(name),
        "takes": routing.describe(name),  # LEADS_ROUTES and the defaults (test leads, do-not-contact)
        "circuit": "open" if name in open_breakers else "closed",
        "circuit_reason": open_breakers[name].reason if name in open_breakers else None,
        "blocked_by_settings": rt.settings.problems.get(name),
        "last_success": success.get(name),
        "last_failure": failure.get(name),
    } for name in rt.settings.destinations]


def doctor_report(settings: Settings) -> dict[str, Any]:
    """The same checks as `python -m leads doctor`, every message scrubbed of secret settings' values."""
    from leads.core.destination import Check
    from leads.services.doctor import EXTRA_CHECKS, destination_checks, scrub, secret_values, setting_checks

    checks = setting_checks(settings)
    for name in settings.destinations:
        checks.extend(destination_checks(name, settings))
    for extra in EXTRA_CHECKS:
        try:
            checks.extend(extra(settings))
        except Exception as error:  # noqa: BLE001 - reported as a failed check, like the CLI does
            checks.append(Check(getattr(extra, "__name__", "check"), "check", False,
                                f"the check itself failed ({type(error).__name__})."))
    secrets = secret_values(os.environ)
    return {"ok": all(c.ok for c in checks) and bool(checks),
            "checks": [{"destination": c.destination, "name": c.name, "ok": c.ok,
                        "message": scrub(c.message, secrets)} for c in checks]}
