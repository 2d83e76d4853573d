"""`replay`: send leads again to the destinations that failed (or, with --all, every one not delivered)."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.browse import progress_options
from leads.cli.common import CHECK_FAILED, OK, UsageError, manage_service
from leads.cli.output import print_json, printable, tracked, wants_progress


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    replay = commands.add_parser("replay", parents=[common, progress_options()],
                                 help="send leads again to the destinations that failed")
    replay.add_argument("ids", nargs="*", help="lead ids")
    replay.add_argument("--failed", action="store_true", help="every lead with a failed, blocked or parked destination")
    replay.add_argument("--all", dest="everything", action="store_true",
                        help="re-send to every destination not yet delivered, not only failed ones")
    replay.add_argument("--destination", metavar="NAME", help="only this destination of each lead")
    replay.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.ids and not args.failed:
        raise UsageError("name lead ids, or --failed for every lead with a failed, blocked or parked destination.")
    if args.everything and args.destination:
        raise UsageError("--all re-sends every destination not delivered; --destination picks one: use one.")
    from leads.runtime import runtime
    from leads.services.replay import leads_needing_attention

    ids = list(dict.fromkeys(args.ids))
    if args.failed:
        ids += [i for i in leads_needing_attention(runtime()) if i not in ids]
    replayed = (replay_one(lead_id, args, lead_id in args.ids)
                for lead_id in tracked(ids, "replaying", args.failed and wants_progress(args.progress)))
    results = [result for result in replayed if result is not None]
    if args.json:
        print_json({"queued": sum(1 for r in results if r["queued"]),
                    "results": [{k: r[k] for k in ("id", "result", "queued")} for r in results]})
    else:
        for result in results:
            print(f"{result['id']}: {printable(result['result'])}")
    return OK if all(r["found"] for r in results) else CHECK_FAILED


def replay_one(lead_id: str, args: argparse.Namespace, named: bool) -> dict[str, Any] | None:
    """{"id", "result": sentence, "queued", "found"}. A lead not found (or without that destination) is a
    result, not an error, so the others go on. None: with --failed --destination, a lead not named on the
    command line whose failed or blocked destinations are all others."""
    from leads.core.errors import BadRequestError, NotFoundError

    if args.everything:  # today's behaviour, kept: every destination not delivered
        from leads.runtime import runtime
        from leads.services.replay import replay_leads

        result = next(replay_leads(runtime(), [lead_id], only_failed=False)).split(": ", 1)[1]
        return {"id": lead_id, "result": result, "queued": result == "queued again",
                "found": result not in ("not found", "not a lead id")}
    if args.failed and args.destination and not named and not failed_at(lead_id, args.destination):
        return None
    try:
        answer = manage_service().replay_lead(lead_id, args.destination)
    except (NotFoundError, BadRequestError) as error:
        return {"id": lead_id, "result": error.explanation, "queued": False, "found": False}
    return {"id": lead_id, "result": answer["result"], "queued": bool(answer["queued"]), "found": True}


def failed_at(lead_id: str, destination: str) -> bool:
    from leads.core.model import BLOCKED, FAILED, PARKED
    from leads.runtime import runtime

    current = runtime().table.load(lead_id)
    state = current.stored.deliveries.get(destination) if current else None
    return state is not None and state.state in (FAILED, BLOCKED, PARKED)
