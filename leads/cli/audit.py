"""`audit`: the operators' actions through the management API and the console, newest first (who, when,
what, which leads, the outcome); kept LEADS_RETENTION_DAYS like the leads."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.common import OK, add_paging, manage_service, page_limit
from leads.cli.output import print_page


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    audit = commands.add_parser("audit", parents=[common],
                                help="who replayed, re-ingested, forgot, exported, sent a test lead or ran doctor")
    add_paging(audit, "entries")
    audit.set_defaults(handler=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    page = manage_service().audit_page(limit=page_limit(args), continuation=args.continuation)
    print_page(page, "entries", "action", ("at", "who", "action", "leads", "status", "outcome"),
               lambda e: [e["at"], e["who"], e["action"], _leads(e), e["status"], e["outcome"]], args.json)
    return OK


def _leads(entry: dict[str, Any]) -> str:
    ids = entry.get("lead_ids") or []
    shown = ", ".join(ids[:3]) + (f" (+{entry['lead_count'] - 3})" if entry.get("lead_count", 0) > 3 else "")
    return shown or (f"person {str(entry['subject'])[:15]}…" if entry.get("subject") else "")
