"""`import [--since DATE]`: read Partner Center's Azure Table destination now, as the timer does every minute;
`--since` backfills the rows written from that date (a first run; rows already imported are not imported
again). A progress bar counts the rows read (the table cannot say how many there are without reading them)."""

from __future__ import annotations

import argparse
from typing import Any

from leads.cli.browse import progress_options
from leads.cli.common import CHECK_FAILED, OK, SETTINGS_PROBLEM
from leads.cli.export import since_of
from leads.cli.output import print_json, progress, wants_progress


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser("import", parents=[common, progress_options()],
                                  help="import the new rows of Partner Center's Azure Table destination now")
    command.add_argument("--since", metavar="DATE",
                         help="backfill: every row written at or after (ISO-8601 date or time, UTC)")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    since = since_of(args.since)
    from leads.core.settings import get_settings
    from leads.runtime import importer
    from leads.services.importer import ImportStopped

    service = importer() if get_settings().import_storage is not None else None
    if service is None:
        sentence = get_settings().warnings.get("LEADS_IMPORT_STORAGE") or (
            "LEADS_IMPORT_STORAGE is not set: name the storage account Partner Center writes leads to "
            "(docs/operations.md, \"Importing from Partner Center's Azure Table destination\").")
        print(sentence)
        return SETTINGS_PROBLEM
    try:
        with progress("importing rows", None, wants_progress(args.progress)) as advance:
            report = service.run(since, advance)
    except ImportStopped as error:
        print(error.explanation)
        return CHECK_FAILED
    if args.json:
        print_json({"read": report.read, "imported": report.imported, "duplicates": report.duplicates,
                    "quarantined": report.quarantined, "skipped": report.skipped,
                    "watermark": report.watermark.isoformat() if report.watermark else None})
    else:
        print(report.sentence())
    return OK
