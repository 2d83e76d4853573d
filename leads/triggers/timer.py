"""The outbox sweeper, every LEADS_SWEEP_SCHEDULE (5 minutes by default)."""

from __future__ import annotations

import azure.functions as func

from leads.settings import binding_sweep_schedule

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(arg_name="timer", schedule=binding_sweep_schedule(), run_on_startup=False, use_monitor=False)
def sweep_outbox(timer: func.TimerRequest) -> None:
    from leads.runtime import sweeper

    sweeper().sweep()
