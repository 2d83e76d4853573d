"""What every command group of `python -m leads` shares: the exit codes (one table, shown in `--help`), the
parser class, the usage error and the management service the commands read from."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

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


def manage_service() -> ManageService:
    """The same service the management API answers from, over the app's storage and settings."""
    from leads.manage.service import ManageService
    from leads.runtime import runtime

    return ManageService(runtime())


def add_paging(parser: argparse.ArgumentParser, items: str) -> None:
    """`--limit` and `--continuation`, as every paged listing takes them (`audit`, `quarantine list`)."""
    parser.add_argument("--limit", type=int, default=50, metavar="N", help=f"{items} per page, 1..100 (50)")
    parser.add_argument("--continuation", metavar="TOKEN", help="the page after the one that printed this token")


def page_limit(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise UsageError(f"--limit must be between 1 and 100; it was {args.limit}.")
    return int(args.limit)
