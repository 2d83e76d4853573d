"""`audit`: the operators' actions through the management API and the console, newest first (who, when,
what, which leads, the outcome); kept LEADS_RETENTION_DAYS like the leads."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.common import OK, UsageError, manage_service
from leads.cli.output import print_json, print_table


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    audit = commands.add_parser("audit", parents=[common],
                                help="who replayed, re-ingested, forgot, exported, sent a test lead or ran doctor")
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="entries per page, 1..100 (50)")
    audit.add_argument("--continuation", metavar="TOKEN", help="the page after the one that printed this token")
    audit.set_defaults(handler=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise UsageError(f"--limit must be between 1 and 100; it was {args.limit}.")
    page = manage_service().audit_page(limit=args.limit, continuation=args.continuation)
    if args.json:
        print_json(page)
        return OK
    entries = page["entries"]
    print_table(None, ("at", "who", "action", "leads", "status", "outcome"),
                ([e["at"], e["who"], e["action"], _leads(e), e["status"], e["outcome"]] for e in entries))
    more = page.get("continuation")
    print(f"{len(entries)} action(s)." + (f" More: --continuation '{more}'" if more else ""))
    return OK


def _leads(entry: dict[str, Any]) -> str:
    ids = entry.get("lead_ids") or []
    shown = ", ".join(ids[:3]) + (f" (+{entry['lead_count'] - 3})" if entry.get("lead_count", 0) > 3 else "")
    return shown or (f"person {str(entry['subject'])[:15]}…" if entry.get("subject") else "")
