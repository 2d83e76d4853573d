"""The parser and the dispatch of `python -m leads`: each command group lives in a module of its own and
adds its sub-commands here. Exit codes are one table, below, shown in `--help`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from leads.cli.local_settings import apply_local_settings

if TYPE_CHECKING:
    from leads.manage.service import ManageService

OK, CHECK_FAILED, SETTINGS_PROBLEM, USAGE = 0, 1, 2, 3

EXIT_CODES = """exit codes:
  0  done (every check passed, the lead was found, the endpoint accepted the test lead)
  1  a check failed, or what was asked for was not found, or the endpoint refused the test lead
  2  a settings or storage problem (the sentence on stderr names it)
  3  usage: an unknown command, option or malformed value

Settings are read like `make run`: the environment, then local.settings.json, else
local.settings.sample.json in the current folder. `--json` prints JSON for scripts."""

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot be run as written: exit 3 with the sentence."""


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; here 2 means settings or storage, so usage is 3."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    from leads.cli import browse, export, health, importer, privacy, quarantine, replay, test_lead

    parser = Parser(prog="python -m leads", description="Operator commands for the leads app.",
                    epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in (browse, replay, quarantine, export, test_lead, health, importer, privacy):
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


def manage_service() -> ManageService:
    """The same service the management API answers from, over the app's storage and settings."""
    from leads.manage.service import ManageService
    from leads.runtime import runtime

    return ManageService(runtime())
