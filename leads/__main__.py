"""`python -m leads doctor | replay <id>... | replay --failed | status`: operator commands, reading the
same settings as `make run`: the environment, then local.settings.json, else local.settings.sample.json
(run from the project folder)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from leads.local_settings import apply_local_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leads")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check every configured destination live; exit 0 if all pass")
    replay = commands.add_parser("replay", help="send leads again to the destinations that failed")
    replay.add_argument("ids", nargs="*", help="lead ids")
    replay.add_argument("--failed", action="store_true", help="every lead with a failed or blocked destination")
    replay.add_argument("--all", dest="everything", action="store_true",
                        help="re-send to every destination not yet delivered, not only failed ones")
    commands.add_parser("status", help="open circuit breakers and recent leads (no personal data)")
    args, rest = parser.parse_known_args(argv)
    apply_local_settings(Path.cwd())  # exactly as `make run` reads them

    from leads.errors import LeadsError

    try:
        if args.command == "doctor":
            from leads.doctor import main as doctor

            return int(doctor(rest))
        from leads.runtime import runtime

        if args.command == "status":
            from leads.status import status_report

            print(json.dumps(status_report(runtime()), indent=2))
            return 0
        from leads.replay import leads_needing_attention, replay_leads

        ids = list(args.ids)
        if args.failed:
            ids += leads_needing_attention(runtime())
        for line in replay_leads(runtime(), ids, only_failed=not args.everything):
            print(line)
        return 0
    except LeadsError as error:
        print(error.explanation, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
