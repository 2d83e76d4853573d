"""`list` and `show`: find leads with the management API's filters, and read one whole."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.common import OK, manage_service
from leads.cli.output import print_json, print_pairs, print_table, progress, wants_progress

PAGE_MAX = 100  # the API's largest page


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    listing = commands.add_parser("list", parents=[common, progress_options()],
                                  help="leads, newest first, with the management API's filters")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--test", dest="test", action="store_const", const="true", help="only test leads")
    which.add_argument("--real", dest="test", action="store_const", const="false", help="only real leads")
    listing.add_argument("--status", help="pending, retrying, blocked, parked, failed, delivered or skipped")
    listing.add_argument("--destination", metavar="NAME", help="leads sent (or to be sent) to this destination")
    listing.add_argument("--destination-state", metavar="STATE", help="that destination's state (with --destination)")
    listing.add_argument("--offer", metavar="TEXT", help="part of the offer title or offer id")
    listing.add_argument("--action", metavar="CODE", help="Partner Center action code (INS, DNC, ...)")
    listing.add_argument("--from", dest="since", metavar="DATE", help="received at or after (ISO-8601)")
    listing.add_argument("--to", dest="until", metavar="DATE", help="received before (ISO-8601)")
    listing.add_argument("--search", metavar="TEXT", help="part of the company, e-mail, first or last name")
    listing.add_argument("--limit", type=int, default=None, metavar="N",
                         help=f"leads per page, 1..{PAGE_MAX} (50; {PAGE_MAX} with --all)")
    listing.add_argument("--continuation", metavar="TOKEN", help="the page after the one that printed this token")
    listing.add_argument("--all", action="store_true", help="follow continuation tokens to the last page")
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", parents=[common], help="one lead whole: personal data, raw body, attempts")
    show.add_argument("id", help="the lead id")
    show.set_defaults(handler=run_show)


def progress_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="a progress bar on stderr (default: when stderr is a terminal)")
    return options


def query_of(args: argparse.Namespace) -> dict[str, str]:
    """The API's query parameters for these options: the service validates them as it validates the API's."""
    names = {"test": "test", "status": "status", "destination": "destination",
             "destination_state": "destination_state", "offer": "offer", "action": "action",
             "since": "from", "until": "to", "search": "q"}
    return {param: str(getattr(args, option)) for option, param in names.items()
            if getattr(args, option) is not None}


def run_list(args: argparse.Namespace) -> int:
    from leads.cli.common import UsageError
    from leads.manage.filters import LeadFilter

    limit = args.limit if args.limit is not None else (PAGE_MAX if args.all else 50)
    if not 1 <= limit <= PAGE_MAX:
        raise UsageError(f"--limit must be between 1 and {PAGE_MAX} (leads per page); it was {limit}.")
    filters = LeadFilter.from_query(query_of(args))
    service = manage_service()
    leads: list[dict[str, Any]] = []
    continuation = args.continuation
    with progress("reading leads", None, args.all and wants_progress(args.progress)) as advance:
        while True:
            page = service.list_leads(filters, limit=limit, continuation=continuation)
            leads.extend(page["leads"])
            advance(len(page["leads"]))
            continuation = page.get("continuation")
            if not (args.all and continuation):
                break
    if args.json:
        print_json({"leads": leads, "continuation": continuation})
        return OK
    print_table(None, ("received", "id", "status", "test", "action", "offer", "company", "name", "email",
                       "deliveries"),
                ([lead["received_at"], lead["id"], lead["status"], "test" if lead.get("test") else "",
                  lead.get("action"), lead.get("offer"), lead.get("company"), lead.get("name"), lead.get("email"),
                  deliveries_cell(lead.get("deliveries") or {})] for lead in leads))
    print(f"{len(leads)} lead(s)." + (f" More: --continuation '{continuation}'" if continuation else ""))
    return OK


def deliveries_cell(deliveries: dict[str, Any]) -> str:
    return " ".join(f"{name}:{state['state']}" for name, state in deliveries.items())


def run_show(args: argparse.Namespace) -> int:
    detail = manage_service().get_lead(args.id)
    if args.json:
        print_json(detail)
        return OK
    lead = detail.get("lead") or {}
    customer = lead.get("customer") or {}
    print_pairs([
        ("id", detail["id"]), ("received", detail["received_at"]), ("status", detail["status"]),
        ("test", detail.get("test")), ("edu", detail.get("edu")),
        ("action", f"{detail.get('action')} ({detail.get('action_meaning')})"), ("offer", detail.get("offer")),
        ("name", detail.get("name")), ("email", detail.get("email")), ("phone", customer.get("phone")),
        ("company", detail.get("company")), ("title", customer.get("title")), ("country", detail.get("country")),
        ("description", detail.get("description")), ("lead source", detail.get("lead_source")),
        ("campaign", ", ".join(f"{k}={v}" for k, v in (detail.get("campaign") or {}).items())),
        ("duplicate arrivals", detail.get("duplicate_arrivals")), ("last duplicate", detail.get("last_duplicate_at")),
        ("raw body", f"{detail.get('raw_body_bytes')} bytes (--json shows it)"),
    ])
    for name, delivery in (detail.get("deliveries") or {}).items():
        print()
        print_pairs([("destination", name), ("state", delivery.get("state")), ("attempts", delivery.get("attempts")),
                     ("record id", delivery.get("record_id")), ("delivered at", delivery.get("delivered_at")),
                     ("next attempt", delivery.get("next_attempt_at")), ("last error", delivery.get("last_error"))])
        history = delivery.get("history") or []
        if history:
            print_table(f"{name}: attempts", ("at", "outcome", "record id", "sentence"),
                        ([h.get("at"), h.get("outcome"), h.get("record_id"), h.get("sentence")] for h in history))
    return OK
