"""`status` (why do I see no leads) and `doctor` (every destination checked live)."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.common import CHECK_FAILED, OK, SETTINGS_PROBLEM, manage_service
from leads.cli.output import print_json, print_table, printable


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    status = commands.add_parser("status", parents=[common],
                                 help="why no leads: last lead and test lead, counts, each destination's health")
    status.set_defaults(handler=run_status)
    doctor = commands.add_parser("doctor", parents=[common],
                                 help="check every configured destination live; exit 0 if all pass")
    doctor.add_argument("--destination", action="append", default=[], help="check only this destination (repeatable)")
    doctor.set_defaults(handler=run_doctor)


def run_status(args: argparse.Namespace) -> int:
    import os

    from leads.core.hosting import MODE_SENTENCES, api_mode

    mode = api_mode(os.environ)  # this process's environment: what the API would be with these settings here
    report = {**manage_service().status(), "api_mode": mode, "api_access": MODE_SENTENCES[mode]}
    if args.json:
        print_json(report)
        return OK
    last, test = report.get("last_lead"), report.get("last_test_lead")
    print(f"Last lead:      {last['received_at'] + '  ' + last['id'] if last else 'none yet'}")
    print(f"Last test lead: {test['received_at'] + '  ' + test['id'] if test else 'none yet'}")
    for sentence in report.get("why_no_leads") or []:
        print(f"- {printable(sentence)}")
    counts: dict[str, dict[str, int]] = report.get("counts") or {}
    states = sorted({state for period in counts.values() for state in period})
    if states:
        print_table("Leads by state", ("period", *states),
                    ([period, *(by_state.get(s, 0) for s in states)] for period, by_state in counts.items()))
    destinations = report.get("destinations") or []
    if destinations:
        print_table("Destinations", ("name", "takes", "circuit", "last success", "last failure", "blocked by settings"),
                    ([d.get("name"), d.get("takes"), d.get("circuit"), d.get("last_success"),
                      f"{d['last_failure']['at']}: {d['last_failure']['sentence']}" if d.get("last_failure") else "",
                      d.get("blocked_by_settings")] for d in destinations))
    for name, sentence in (report.get("settings_ignored") or {}).items():
        print(f"Setting {name} ignored: {printable(str(sentence))}")
    print(f"Management API: {report['api_access']}.")
    return OK


def run_doctor(args: argparse.Namespace) -> int:
    """The same checks as the lines `python -m leads doctor` has always printed (leads/services/doctor.py), as
    `{"ok", "checks": [{"destination", "name", "ok", "message"}]}` with --json; secrets scrubbed either way."""
    from leads.services import doctor

    if not args.json:
        return int(doctor.main([f"--destination={name}" for name in args.destination]))
    import os

    from leads.core.errors import SettingsError
    from leads.core.settings import load_settings

    secrets = doctor.secret_values(os.environ)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print_json({"ok": False, "checks": [{"destination": "settings", "name": "settings", "ok": False,
                                             "message": doctor.scrub(error.explanation, secrets)}]})
        return SETTINGS_PROBLEM
    checks = doctor.setting_checks(settings)
    for name in settings.destinations:
        if not args.destination or name in args.destination:
            checks.extend(doctor.destination_checks(name, settings))
    for extra in doctor.EXTRA_CHECKS:
        checks.extend(extra(settings))
    rows = [{"destination": c.destination, "name": c.name, "ok": c.ok, "message": doctor.scrub(c.message, secrets)}
            for c in checks]
    ok = bool(rows) and all(row["ok"] for row in rows)
    print_json({"ok": ok, "checks": rows})
    return OK if ok else CHECK_FAILED
