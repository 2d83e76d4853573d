"""`forget EMAIL`, `subject-export EMAIL`, `purge`, `reindex`: a person's erasure and access requests, and the retention
run on demand (leads/services/privacy.py). The address is never printed to logs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from leads.cli.common import OK
from leads.cli.output import print_json, print_pairs


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    forget = commands.add_parser("forget", parents=[common],
                                 help="erase every record of a person (leads, markers, quarantine, spool, queues)")
    forget.add_argument("email", help="the person's e-mail address (case is ignored)")
    forget.set_defaults(handler=run_forget)
    export = commands.add_parser("subject-export", parents=[common],
                                 help="write everything held about a person as JSON (an access request)")
    export.add_argument("email", help="the person's e-mail address (case is ignored)")
    export.add_argument("--output", "-o", metavar="FILE", default="-", help="where to write the JSON (- : stdout)")
    export.set_defaults(handler=run_export)
    purge = commands.add_parser("purge", parents=[common],
                                help="run the daily retention purge now (LEADS_RETENTION_DAYS; re-keys old markers)")
    purge.set_defaults(handler=run_purge)
    reindex = commands.add_parser("reindex", parents=[common],
                                  help="index the leads stored before the person index (one time, resumable; the "
                                       "daily purge does it too) and re-key old markers")
    reindex.add_argument("--most", type=int, default=None, metavar="N", help="index at most N leads this run")
    reindex.set_defaults(handler=run_reindex)


def _privacy() -> Any:
    from leads.runtime import runtime
    from leads.services.privacy import Privacy

    return Privacy(runtime())


def run_forget(args: argparse.Namespace) -> int:
    counts = _privacy().forget(args.email.strip())
    if args.json:
        print_json(counts)
    else:
        print_pairs(list(counts.items()))
        print("Erased." if any(counts.values()) else "Nothing held about this address (any more).")
    return OK


def run_export(args: argparse.Namespace) -> int:
    document = _privacy().export(args.email.strip())
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"{len(document['leads'])} lead(s) written to {args.output}.", file=sys.stderr)
    return OK


def run_purge(args: argparse.Namespace) -> int:
    counts = _privacy().purge()
    if args.json:
        print_json(counts)
    else:
        print_pairs(list(counts.items()) or [("deleted", 0)])
        kept = sum(count for name, count in counts.items() if name.startswith("kept_"))
        if kept:
            print(f"{kept} lead(s) past retention kept: a destination still waits for them (kept_<state> above). "
                  "They go once delivered, skipped or failed: fix the destination or replay them.")
    return OK


def run_reindex(args: argparse.Namespace) -> int:
    counts = _privacy().reindex(args.most)
    if args.json:
        print_json(counts)
    else:
        print_pairs(list(counts.items()) or [("leads_indexed", 0)])
        print("The person index is complete: forget and subject-export read it." if _privacy().index.ready() else
              "Not finished: run it again (it goes on where it stopped); until then forget reads every lead.")
    return OK
