"""The outbox sweeper, every LEADS_SWEEP_SCHEDULE (5 minutes by default); the importer, every minute, only
where LEADS_IMPORT_STORAGE is set."""

from __future__ import annotations

import os

import azure.functions as func

from leads.core.settings import binding_sweep_schedule

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(arg_name="timer", schedule=binding_sweep_schedule(), run_on_startup=False, use_monitor=False)
def sweep_outbox(timer: func.TimerRequest) -> None:
    from leads.runtime import sweeper

    sweeper().sweep()


def import_leads(timer: func.TimerRequest) -> None:
    """Rows of Partner Center's Azure Table destination become leads (leads/services/importer.py). Without
    LEADS_IMPORT_STORAGE it returns before any storage client exists: an idle app pays nothing for it."""
    from leads.core.settings import get_settings

    if get_settings().import_storage is None:
        return
    import logging

    from leads.core.errors import StorageUnavailableError
    from leads.runtime import importer

    service = importer()
    if service is None:
        return
    try:
        report = service.run()
    except StorageUnavailableError as error:
        logging.getLogger("leads.importer").warning("import: %s", error.explanation)
        return
    if report.read:
        log = logging.getLogger("leads.importer")
        (log.warning if report.past_retention else log.info)("import: %s", report.sentence())


# Registered only when configured (the app is indexed again when an app setting changes): a timer firing every
# minute for nothing would keep an instance awake, and with it the queue polling the idle cost is about.
if os.environ.get("LEADS_IMPORT_STORAGE", "").strip():
    bp.timer_trigger(arg_name="timer", schedule="30 */1 * * * *", run_on_startup=False,
                     use_monitor=False)(import_leads)
