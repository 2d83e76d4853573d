"""The outbox sweeper, every minute."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=False, use_monitor=False)
def sweep_outbox(timer: func.TimerRequest) -> None:
    from leads.runtime import sweeper

    sweeper().sweep()
