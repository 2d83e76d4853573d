"""The parser and the dispatch of `python -m leads`: each command group lives in a module of its own and
adds its sub-commands here. Exit codes are one table (leads/cli/common.py), shown in `--help`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leads.cli.common import CHECK_FAILED, EXIT_CODES, SETTINGS_PROBLEM, USAGE, Handler, Parser, UsageError
from leads.cli.local_settings import apply_local_settings


def build_parser() -> Parser:
    from leads.cli import audit, browse, export, health, importer, privacy, quarantine, replay, test_lead, verify

    parser = Parser(prog="python -m leads", description="Operator commands for the leads app.",
                    epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in (browse, replay, quarantine, export, test_lead, health, importer, privacy, verify, audit):
        module.add_commands(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_local_settings(Path.cwd())  # exactly as `make run` reads them
    handler: Handler = args.handler
    from leads.core.errors import BadRequestError, LeadsError, NotFoundError

    try:
        return handler(args)
    except UsageError as error:
        print(f"python -m leads {args.command}: {error}", file=sys.stderr)
        return USAGE
    except NotFoundError as error:
        print(error.explanation, file=sys.stderr)
        return CHECK_FAILED
    except BadRequestError as error:  # a filter or token the service refused: the sentence names it
        print(error.explanation, file=sys.stderr)
        return USAGE
    except LeadsError as error:  # settings or storage
        print(error.explanation, file=sys.stderr)
        return SETTINGS_PROBLEM
