"""`export --format csv|jsonl [--since DATE] [--output FILE]`: every lead, newest first, read a page at a
time (a range query on the lead rows, stopping at the first lead older than --since).

CSV is made to be opened in a spreadsheet, so a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return gets a leading `'`: a lead's value (anyone can type one into Partner Center's form) can then never
become a formula (OWASP, "CSV Injection")."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from leads.cli.browse import progress_options
from leads.cli.common import OK, UsageError
from leads.cli.output import progress, wants_progress
from leads.core.model import StoredLead, iso

PAGE = 100
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = ("id", "received_at", "status", "test", "edu", "duplicate_arrivals", "action_code",
               "action_meaning", "offer_title", "offer", "lead_source", "first_name", "last_name", "email", "phone",
               "country", "company", "title", "description", "campaign", "deliveries")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser("export", parents=[progress_options()],
                                 help="every lead as CSV or JSON lines (personal data included)")
    export.add_argument("--format", choices=("csv", "jsonl"), required=True)
    export.add_argument("--since", metavar="DATE", help="only leads received at or after (ISO-8601 date or time, UTC)")
    export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(handler=run)


def since_of(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO-8601 date or time (for example 2026-11-01 or "
                         "2026-11-01T08:00:00Z).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    since = since_of(args.since)
    from leads.runtime import runtime

    table = runtime().table
    # Into FILE.partial, renamed when complete: a failed export never leaves a short file that looks whole.
    partial = Path(f"{args.output}.partial") if args.output else None
    stream: TextIO = partial.open("w", encoding="utf-8", newline="") if partial else sys.stdout
    try:
        with progress("exporting leads", None, wants_progress(args.progress)) as advance:
            write = csv_writer(stream) if args.format == "csv" else jsonl_writer(stream)
            for stored in leads_since(table, since):
                write(stored)
                advance(1)
    finally:
        if partial:
            stream.close()
    if partial:
        partial.replace(args.output)
    return OK


def leads_since(table: Any, since: datetime | None) -> Iterator[StoredLead]:
    continuation: str | None = None
    while True:
        leads, continuation = table.page(PAGE, continuation)
        for stored in leads:
            if since is not None and stored.received_at < since:
                return  # newest first: every later one is older still
            yield stored
        if not continuation:
            return


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(stored: StoredLead) -> dict[str, str]:
    lead, customer = stored.lead, stored.lead.customer
    row: dict[str, Any] = {
        "id": stored.id, "received_at": iso(stored.received_at), "status": stored.status,
        "test": str(lead.is_test).lower(), "edu": str(lead.is_edu).lower(), "duplicate_arrivals": stored.duplicates,
        "action_code": lead.action, "action_meaning": lead.action_meaning, "offer_title": lead.offer_title,
        "offer": lead.lead_source.offer, "lead_source": lead.lead_source.raw, "first_name": customer.first_name,
        "last_name": customer.last_name, "email": customer.email, "phone": customer.phone,
        "country": customer.country, "company": customer.company, "title": customer.title,
        "description": lead.description,
        "campaign": json.dumps(lead.campaign, ensure_ascii=False) if lead.campaign else "",
        "deliveries": " ".join(f"{name}:{d.state}" for name, d in stored.deliveries.items()),
    }
    return {name: safe_cell(row[name]) for name in CSV_COLUMNS}


def csv_writer(stream: TextIO) -> Any:
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    return lambda stored: writer.writerow(csv_row(stored))


def jsonl_record(stored: StoredLead) -> dict[str, Any]:
    return {"id": stored.id, "received_at": iso(stored.received_at), "status": stored.status,
            "test": stored.lead.is_test, "edu": stored.lead.is_edu, "duplicate_arrivals": stored.duplicates,
            "lead": stored.lead.to_dict(),
            "deliveries": {name: {k: v for k, v in asdict(d).items() if k != "lease_until"}
                           for name, d in stored.deliveries.items()}}


def jsonl_writer(stream: TextIO) -> Any:
    return lambda stored: print(json.dumps(jsonl_record(stored), ensure_ascii=False), file=stream)
