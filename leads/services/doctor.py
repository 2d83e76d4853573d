"""`python -m leads doctor`: check every configured destination live and print one line per check.

    OK   dynamics  token: Azure AD issued a token for https://contoso.crm4.dynamics.com to ...
    FAIL dynamics  instance: The application user has no security role in Dynamics 365 (...): assign ...

Exit status 0 only if every check passed, 1 if one failed (a bad setting included: each is a FAIL line
naming it), 2 if storage is not configured (then the app takes no lead at all). Reads
the same settings as the app. No line ever holds a secret: destinations are written not to put one in a
message, and every line is scrubbed of the secret settings' values anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from leads.core.destination import Check
from leads.core.errors import LeadsError, SettingsError
from leads.core.settings import Settings, load_settings, secret_setting_names

# Checks that are not a destination's: each gets the settings and returns its lines. They run after the
# destinations, in order.
ExtraCheck = Callable[[Settings], list[Check]]


def storage_checks(settings: Settings) -> list[Check]:
    """The app's own storage: the leads table and the delivery queue answer."""
    from azure.core.exceptions import AzureError

    from leads.core.errors import StorageUnavailableError
    from leads.storage.azure_clients import queue_service, table_service
    from leads.storage.table_store import LeadTable
    from leads.storage.work_queue import WorkQueue

    where = ("AzureWebJobsStorage__tableServiceUri / __queueServiceUri and the identity's Storage Table and "
             "Queue Data Contributor roles" if settings.storage.uses_identity else "AzureWebJobsStorage")
    checks = []
    try:
        LeadTable(table_service(settings.storage), settings.table, settings.quarantine_table).ping()
        checks.append(Check("storage", "table", True, f"table storage answers (table {settings.table})."))
    except StorageUnavailableError as error:
        checks.append(Check("storage", "table", False, f"{error.explanation} Check {where}."))
    try:
        WorkQueue(queue_service(settings.storage), settings.queue).queue.get_queue_properties()
        checks.append(Check("storage", "queue", True, f"queue {settings.queue} exists."))
    except AzureError as error:
        status = getattr(error, "status_code", None)
        reason = (f"queue {settings.queue} does not exist yet (the app creates it when it starts; the Bicep "
                  "creates it in Azure)." if status == 404 else f"queue storage did not answer. Check {where}.")
        checks.append(Check("storage", "queue", False, reason))
    return checks


def import_checks(settings: Settings) -> list[Check]:
    """Partner Center's table (LEADS_IMPORT_STORAGE) may be read. Nothing when the import is off; a malformed
    value is already a FAIL line of its own (settings)."""
    if settings.import_storage is None:
        return []
    from leads.core.errors import StorageUnavailableError
    from leads.storage.azure_clients import table_service
    from leads.storage.source_table import SourceTable

    table = settings.import_table
    try:
        SourceTable(table_service(settings.import_storage).get_table_client(table)).ping()
    except StorageUnavailableError as error:
        return [Check("import", "source table", False, error.explanation)]
    return [Check("import", "source table", True, f"Partner Center's table {table} may be read.")]


def access_checks(settings: Settings) -> list[Check]:
    """How open the management API and the console are in this process (leads/core/hosting.py): a line, never a
    failure. Over HTTP the answer's `api_mode` also weighs the request's Host."""
    import os

    from leads.core.hosting import MODE_SENTENCES, api_mode, hosting

    where = hosting(os.environ) or "no Azure hosting detected"
    return [Check("app", "management API", True, f"{MODE_SENTENCES[api_mode(os.environ)]} ({where}).")]


EXTRA_CHECKS: list[ExtraCheck] = [storage_checks, import_checks, access_checks]

_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


def setting_checks(settings: Settings) -> list[Check]:
    """Each global setting that is malformed (the app uses its default meanwhile), by name."""
    return [Check("settings", name, False, sentence) for name, sentence in settings.warnings.items()]


def destination_checks(name: str, settings: Settings, send_test: bool = False) -> list[Check]:
    """Build one destination and run its checks; a failure to build is a failed check, not a crash. With
    `send_test`, a destination that can send a test message (e-mail) sends one after its checks passed."""
    from leads.destinations import usable_destination

    destination = usable_destination(name, settings)  # a bad setting: one failed "settings" line
    routing = [Check(name, "routing", True, f"LEADS_ROUTES gives it {settings.routing.describe(name)}.")
               if name in settings.routes else None]
    try:
        checks = destination.check()
        test: Callable[[], list[Check]] | None = getattr(destination, "send_test", None)
        if send_test and test is not None and all(c.ok for c in checks):
            checks.extend(test())
        return checks + [check for check in routing if check is not None]
    except LeadsError as error:
        return [Check(name, "check", False, error.explanation)]
    except Exception as error:  # noqa: BLE001 - one broken destination must not hide the others' results
        return [Check(name, "check", False, f"the check itself failed ({type(error).__name__}); see the app's "
                                            "logs with the same settings.")]


def secret_values(env: Mapping[str, str]) -> list[str]:
    values = [env.get(name, "").strip() for name in secret_setting_names(env)]  # named destinations' too
    # Each of several space-separated webhook secrets (a rotation) on its own, too.
    values += [part for value in values if value.startswith("whsec_") for part in value.split()]
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
        # A PEM certificate setting may be echoed line by line: blank each long line of it too.
        for line in secret.splitlines():
            if len(line.strip()) >= 16:
                text = text.replace(line.strip(), "[redacted]")
    return text


def format_check(check: Check, width: int) -> str:
    status = "OK" if check.ok else "FAIL"
    return f"{status:<4} {check.destination:<{width}} {check.name}: {check.message}"


def main(argv: list[str] | None = None, *, env: Mapping[str, str] | None = None,
         out: TextIO | None = None, extra_checks: list[ExtraCheck] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leads doctor",
                                     description="Check every configured destination live.")
    parser.add_argument("--destination", action="append", default=[],
                        help="check only this destination (repeatable)")
    parser.add_argument("--send-test-email", action="store_true",
                        help="also send one test e-mail to LEADS_EMAIL_TO (the only way to check an Azure "
                             "Communication Services sender domain)")
    args = parser.parse_args(argv or [])
    env = os.environ if env is None else env
    out = out or sys.stdout
    secrets = secret_values(env)

    def emit(line: str) -> None:
        print(scrub(line, secrets), file=out)

    try:
        settings = load_settings(env)
    except SettingsError as error:
        emit(f"FAIL settings: {error.explanation}")
        return 2
    names = [n for n in settings.destinations if not args.destination or n in args.destination]
    checks: list[Check] = setting_checks(settings)
    for name in names:
        checks.extend(destination_checks(name, settings, args.send_test_email))
    for extra in EXTRA_CHECKS if extra_checks is None else extra_checks:
        try:
            checks.extend(extra(settings))
        except Exception as error:  # noqa: BLE001 - report it as a failed check like any other
            checks.append(Check(getattr(extra, "__name__", "check"), "check", False,
                                f"the check itself failed ({type(error).__name__})."))
    if not checks:
        emit("FAIL settings: no destination to check (LEADS_DESTINATIONS).")
        return 1
    width = max(len(c.destination) for c in checks) + 1
    for check in checks:
        emit(format_check(check, width))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
