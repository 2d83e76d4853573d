"""`quarantine list | show ID | reingest ID`: requests the app refused, kept so none is lost, and taken in
again once their cause is fixed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from leads.cli.common import CHECK_FAILED, OK, add_paging, manage_service, page_limit
from leads.cli.output import print_json, print_page, print_pairs, printable


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("quarantine", help="requests the app refused (list, show, reingest)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="refused requests, newest first")
    add_paging(listing, "requests")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", parents=[common], help="one refused request, its body included")
    show.add_argument("id", help="the request id (from `quarantine list`)")
    show.set_defaults(handler=run_show)
    reingest = actions.add_parser("reingest", parents=[common],
                                  help="take a refused request in again, as if Partner Center re-sent it")
    reingest.add_argument("id", help="the request id (from `quarantine list`)")
    reingest.set_defaults(handler=run_reingest)


def run_list(args: argparse.Namespace) -> int:
    page = manage_service().list_quarantine(limit=page_limit(args), continuation=args.continuation)
    print_page(page, "requests", "request", ("received", "id", "status", "reason", "bytes", "message"),
               lambda r: [r.get("received_at"), r.get("id"), r.get("status"), r.get("reason"),
                          f"{r.get('body_bytes')}{' (truncated)' if r.get('truncated') else ''}", r.get("message")],
               args.json)
    return OK


def run_show(args: argparse.Namespace) -> int:
    request = manage_service().get_quarantined(args.id)
    if args.json:
        print_json(request)
        return OK
    print_pairs([(name, request.get(name)) for name in
                 ("id", "received_at", "status", "reason", "message", "method", "content_type", "body_bytes",
                  "truncated")])
    print("body:")
    print(printable(str(request.get("body", ""))))
    return OK


def run_reingest(args: argparse.Namespace) -> int:
    from leads.core.errors import BadRequestError

    try:
        outcome = manage_service().reingest(args.id)
    except BadRequestError as error:  # only part of the body was kept: it cannot be taken in again
        print(error.explanation, file=sys.stderr)
        return CHECK_FAILED
    accepted = 200 <= int(outcome["status"]) < 300
    if args.json:
        print_json(outcome)
    else:
        answer = outcome.get("answer") or {}
        if accepted:
            print(f"Taken in: HTTP {outcome['status']}, lead {answer.get('id')}"
                  f"{' (a duplicate of one already stored)' if answer.get('duplicate') else ''}.")
        else:
            print(f"Refused again: HTTP {outcome['status']}: {printable(str(answer.get('message', answer)))}")
    return OK if accepted else CHECK_FAILED
