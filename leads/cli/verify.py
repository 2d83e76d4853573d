"""`verify https://<app>`: the checklist to run after a deployment (docs/deploy.md, What verify checks); the
checks live in leads/services/verify.py. The key and token come from options or the environment and are never
printed."""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

from leads.cli.common import CHECK_FAILED, OK, UsageError
from leads.cli.output import print_json, printable


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    verify = commands.add_parser("verify", parents=[common],
                                 help="check a deployment: health, routes closed, a test lead delivered, alerts")
    verify.add_argument("url", help="the app's address, e.g. https://func-leads-abc.azurewebsites.net")
    verify.add_argument("--key", default="", help="a function key (else LEADS_VERIFY_KEY); sent as the "
                                                  "x-functions-key header, never printed")
    verify.add_argument("--token", default="", help="a bearer token for the app registration (else "
                                                    "LEADS_VERIFY_TOKEN), to read the lead as a signed-in operator")
    verify.add_argument("--resource-group", default="", help="where the alert rules are (else found with az)")
    verify.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                        help="how long the test lead may take to reach e-mail (120)")
    verify.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from leads.manage.test_lead import test_lead_body
    from leads.services.verify import FAILED, PASSED, SKIPPED, Target, verify

    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise UsageError("give the app's address only, e.g. https://func-leads-abc.azurewebsites.net (the key goes "
                         "in --key or LEADS_VERIFY_KEY, never in the URL).")
    target = Target(f"{parts.scheme}://{parts.netloc}", key=args.key or os.environ.get("LEADS_VERIFY_KEY", ""),
                    token=args.token or os.environ.get("LEADS_VERIFY_TOKEN", ""))
    report = verify(target, test_lead_body(), deliver_within=args.wait, resource_group=args.resource_group)
    if args.json:
        print_json(report.as_dict())
        return OK if report.ok else CHECK_FAILED
    marks = {PASSED: "[ok]  ", FAILED: "[FAIL]"}
    for check in report.checks:
        detail = check.detail if check.outcome != SKIPPED else f"skipped: {check.detail}"
        print(f"{marks.get(check.outcome, '[--]  ')} {check.name}" + (f": {printable(detail)}" if detail else ""))
    for name, state in report.destinations.items():
        error = f" ({printable(state['last_error'])})" if state.get("last_error") else ""
        print(f"       destination {name}: {state['state']}, {state['attempts']} attempt(s){error}")
    failed = sum(1 for check in report.checks if check.outcome == FAILED)
    print(f"{'All checks passed' if report.ok else f'{failed} check(s) failed'} for {target.base_url}.")
    return OK if report.ok else CHECK_FAILED
