"""The retention purge, daily (leads/services/privacy.py): a few empty range queries when nothing is due."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(arg_name="timer", schedule="0 17 3 * * *", run_on_startup=False, use_monitor=False)
def purge_expired(timer: func.TimerRequest) -> None:
    from leads.runtime import runtime
    from leads.services.privacy import Privacy

    Privacy(runtime()).purge()
