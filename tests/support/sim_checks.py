"""The simulation's invariants (tests/support/simulation.py), read straight from the in-memory storage (no
fault hook, no adapter): after every step, and at quiescence (no faults, every destination healthy and named
again, the timers and the host run until nothing is left to do).

Each violation names its invariant; one that is a known case of an issue-16 defect names the defect, so the
test can keep every other invariant strict (tests/services/test_simulation.py)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leads.core import keys
from leads.core.model import DELIVERED, FAILED, SKIPPED, DeliveryState
from leads.core.policy import REMOVED_SKIP
from leads.storage.fallback_table import FALLBACK_TABLE, HELD_PARTITION
from leads.storage.table_store import deliveries_from_json
from tests.support.sim_world import DESTINATIONS, PC_TABLE, Person

if TYPE_CHECKING:
    from tests.support.simulation import Simulation

# A lead stored while its tombstone could not be read after the write (storage faults) exists until a delivery
# asks the tombstone and erases it, before anything is sent (leads/services/delivery.py): counted and printed, not
# a failure. A forgotten person's lead that reaches a destination is one (sim.handed_over).
FORGOTTEN_BACK = "stored while its tombstone was unreadable (erased before any send)"


QUIESCENCE_ROUNDS = 400
FINISHED = frozenset({DELIVERED, FAILED, SKIPPED})


def _rows(sim: Simulation, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    table = sim.main.tables[sim.settings.table]
    start = bisect.bisect_left(table.order, (keys.LEADS_PARTITION, prefix))
    end = bisect.bisect_left(table.order, (keys.LEADS_PARTITION, prefix + "\uffff"))
    for key in table.order[start:end]:
        yield key[1], table.rows[key].entity


def lead_rows(sim: Simulation) -> dict[str, dict[str, Any]]:
    return {str(entity["Id"]): entity for _, entity in _rows(sim, "lead:")}


def lead_count(sim: Simulation) -> int:
    return len(lead_rows(sim))


def raw_deliveries(sim: Simulation, lead_id: str) -> dict[str, DeliveryState]:
    row = sim.main.tables[sim.settings.table].rows.get((keys.LEADS_PARTITION, keys.lead_row_key(lead_id)))
    return {} if row is None else deliveries_from_json(str(row.entity.get("Deliveries") or "{}"))


def _held_ids(sim: Simulation) -> set[str]:
    return {str(row.entity.get("LeadId")) for row in sim.fallback.tables[FALLBACK_TABLE].rows.values()
            if "LeadId" in row.entity}


def _finished(entity: dict[str, Any]) -> bool:
    states = deliveries_from_json(str(entity.get("Deliveries") or "{}")).values()
    return all(state.state in FINISHED for state in states)


# --- after each step ---------------------------------------------------------------------------------------------
def accepted(sim: Simulation, person: Person, lead_id: str) -> None:
    owner = sim.owners.setdefault(lead_id, person.email)
    if owner != person.email:
        sim.violate("no two distinct leads merged", f"lead {lead_id} of {owner} was the answer to {person.email}")
    person.accepted_ids.add(lead_id)


def after_step(sim: Simulation) -> None:
    leads = lead_rows(sim)
    emails = {str(entity.get("Email")) for entity in leads.values()}
    for lead_id in leads.keys() - sim.first_seen.keys():
        sim.first_seen[lead_id] = sim.clock()
    held = _held_ids(sim)
    for lead_id, entity in leads.items():
        owner = sim.owners.get(lead_id)
        if owner is not None and owner != entity.get("Email") and (lead_id, "merged") not in sim.reported:
            sim.reported.add((lead_id, "merged"))
            sim.violate("no two distinct leads merged",
                        f"lead {lead_id} answered to {owner} holds {entity.get('Email')}")
    for person in sim.people:
        if person.forget_pending:
            continue
        if person.forgotten_at is not None:
            if person.email in emails and (person.email, "back") not in sim.reported:
                sim.reported.add((person.email, "back"))
                # Partner Center's table still holds the row: the next import stores it again (issue 16 point 4,
                # a tombstone: branch privacy).
                sim.violate("a forgotten person never comes back", f"a lead of {person.email} is stored again",
                            known=FORGOTTEN_BACK)
            continue
        if not person.accepted_ids or person.email in emails or person.accepted_ids & (held | sim.purged_ok):
            continue
        if (person.email, "lost") not in sim.reported:
            sim.reported.add((person.email, "lost"))
            purged = sim.report.actions["purge"] and sim.last_kind == "purge"
            sim.violate("every accepted lead is stored", f"{person.email} (answered {sorted(person.accepted_ids)}) "
                        "is in neither the main nor the fallback table", defect=6 if purged else None)
    dirty, sim.dirty_sends = sim.dirty_sends, set()
    for email, destination in dirty:
        count = sim.sends[(email, destination)]
        if count > 1 + sim.allowance[(email, destination)] and (email, destination) not in sim.reported:
            sim.reported.add((email, destination))
            sender = sim.by_email.get(email)
            sent_to = sim.sent_ids[(email, destination)]
            moments = sorted(keys.received_at_of(lead_id) for lead_id in sent_to)
            # Defect 5: an imported lead compared by its import time, later than the de-dup window.
            two_leads = len(moments) > 1 and moments[-1] - moments[0] >= timedelta(hours=sim.settings.dedupe_hours)
            imported = sender is not None and sender.via in ("import", "both")
            # Erased by a `forget` run (perhaps one cut short: the marker goes before the lead), then stored again:
            # imported from Partner Center's table (point 4), or moved from the fallback table (defect 11).
            started = sender.forget_started if sender is not None else None
            # (At the very moment it started counts: a held lead moved by the sweep of the same instant.)
            back = started is not None and any((i in sim.first_seen and sim.first_seen[i] >= started) or
                                               keys.received_at_of(i) >= started for i in sent_to)
            sim.violate("each destination receives a lead at most once (plus once per unrecorded send)",
                        f"{destination} got {email} {count} times (lead ids "
                        f"{sorted(sim.sent_ids[(email, destination)])}; "
                        f"{sim.allowance[(email, destination)]} unrecorded sends)",
                        defect=5 if two_leads and imported else (11 if back and not imported else None),
                        known="point 4" if back and imported else None)


def unfinished_leads(sim: Simulation) -> dict[str, tuple[bool, str]]:
    """Every lead id: whether it is unfinished (pending, retrying, blocked or being sent somewhere), and whose."""
    return {lead_id: (not _finished(entity), str(entity.get("Email"))) for lead_id, entity in lead_rows(sim).items()}


def after_purge(sim: Simulation, before: dict[str, tuple[bool, str]]) -> None:
    now = lead_rows(sim)
    window = timedelta(hours=sim.settings.dedupe_hours)
    for lead_id, (unfinished, email) in before.items():
        if lead_id in now:
            continue
        if unfinished:
            sim.violate("nothing parked or blocked lost", f"the purge deleted unfinished lead {lead_id}", defect=6)
        sim.purged_ok.add(lead_id)  # reported once (above); not again as "not stored"
        sim.purged_emails.add(email)
        # A repeat answered with its own id while storage was down (held in the fallback table) is merged, when
        # it is stored, into the lead of the same content within the de-dup window, before or after it: it went
        # with it (SIM_SEED=204666838, 500000112).
        person, received = sim.by_email.get(email), keys.received_at_of(lead_id)
        if person is not None:
            sim.purged_ok.update(i for i in person.accepted_ids if abs(keys.received_at_of(i) - received) <= window)


def after_forget(sim: Simulation, person: Person) -> None:
    held = [row.entity for row in sim.fallback.tables[FALLBACK_TABLE].rows.values()]
    if any(person.email.encode() in bytes(entity.get("Body0") or b"") for entity in held):
        sim.violate("a forgotten person never comes back", f"{person.email} is still held in the fallback table")


# --- quiescence ---------------------------------------------------------------------------------------------------
def _idle(sim: Simulation) -> bool:
    queues = sim.main.queues
    waiting = any(queues[name].messages for name in (sim.settings.queue, f"{sim.settings.queue}-poison"))
    outbox = next(_rows(sim, "outbox:"), None) is not None
    held = any(pk == HELD_PARTITION for pk, _ in sim.fallback.tables[FALLBACK_TABLE].rows)
    spooled = sim.spool_dir.is_dir() and any(sim.spool_dir.glob("*.json"))
    return not (waiting or outbox or held or spooled)


def quiesce(sim: Simulation) -> None:
    """Faults off, destinations healthy and all named (the app restarts), pending forgets finished; then the
    host and the timers run, the clock moving to the next thing due, until nothing is left."""
    from tests.support.sim_world import settings_for

    sim.outage_until, sim.moods, sim.destinations = None, {}, DESTINATIONS
    sim.settings = settings_for(DESTINATIONS, sim.spool_dir)
    sim.crash()
    for _ in [p for p in sim.people if p.forget_pending]:
        sim.step("forget")  # the operator runs `forget` again until it finishes
    sim.step("import")  # the importer's minute: Partner Center's rows written since the last run
    for _ in range(QUIESCENCE_ROUNDS):
        if _idle(sim):
            break
        sim.report.quiescence_steps += 1
        sim.clock.advance(_until_next(sim))
        sim.step("sweep")
        for _ in range(50):
            if not _visible(sim):
                break
            sim.report.quiescence_steps += 1
            sim.step("deliver")
        after_step(sim)
    else:
        sim.violate("everything finishes", f"still busy after {QUIESCENCE_ROUNDS} sweeps: {_busy(sim)}")
    _check_quiet(sim)


def _until_next(sim: Simulation) -> float:
    """Seconds until the next outbox row is due or the next message shows (at least 1; 300, a sweep's period,
    when nothing is scheduled: the poison queue and the held leads need a sweep)."""
    now = sim.clock()
    moments = [e["DueAt"] for _, e in _rows(sim, "outbox:") if isinstance(e.get("DueAt"), datetime)]
    moments += [m.next_visible_on for m in sim.main.queues[sim.settings.queue].messages.values()]
    ahead = [(moment - now).total_seconds() for moment in moments]
    return max(1.0, min(ahead, default=300.0))


def _visible(sim: Simulation) -> bool:
    now = sim.clock()
    return any(m.next_visible_on <= now for m in sim.main.queues[sim.settings.queue].messages.values())


def _busy(sim: Simulation) -> str:
    outbox = [str(e.get("LeadId")) for _, e in _rows(sim, "outbox:")]
    return (f"{len(outbox)} outbox rows, {len(sim.main.queues[sim.settings.queue].messages)} messages, "
            f"{len(sim.main.queues[sim.settings.queue + '-poison'].messages)} poison, "
            f"{sum(pk == HELD_PARTITION for pk, _ in sim.fallback.tables[FALLBACK_TABLE].rows)} held")


def _check_quiet(sim: Simulation) -> None:
    leads = lead_rows(sim)
    for _, entity in _rows(sim, "outbox:"):
        lead_id = str(entity.get("LeadId"))
        if lead_id not in leads:
            sim.violate("no orphan outbox row", f"outbox row of lead {lead_id}, which does not exist", defect=7)
        else:
            sim.violate("the outbox is empty once everything is finished", f"outbox row of lead {lead_id} left")
    delays = sim.settings.retry_delays
    for lead_id, entity in leads.items():
        email = str(entity.get("Email"))
        for name, state in deliveries_from_json(str(entity.get("Deliveries") or "{}")).items():
            _check_state(sim, lead_id, email, name, state, len(delays))
        if not entity.get("BodyBytes"):
            sim.violate("the body as received is kept", f"lead {lead_id} has no raw body", defect=10)
    _check_imported(sim, {str(entity.get("Email")) for entity in leads.values()})
    failed = list(sim.spool_dir.glob("*.failed")) if sim.spool_dir.is_dir() else []
    if failed:
        sim.violate("nothing accepted is set aside for good", f"{len(failed)} spooled lead(s) set aside as .failed",
                    defect=2)
    after_step(sim)


def _check_state(sim: Simulation, lead_id: str, email: str, name: str, state: DeliveryState, steps: int) -> None:
    where = f"lead {lead_id} at {name}"
    if state.state == DELIVERED:
        if sim.sends[(email, name)] < 1:
            sim.violate("a delivered lead was handed over", f"{where} is delivered but {name} never got it")
        return
    if state.state == SKIPPED:
        if state.last_error == REMOVED_SKIP and name in sim.settings.routing.destinations:
            sim.violate("nothing parked or blocked lost", f"{where} was skipped for good while it was not named, "
                        "and stays skipped now that it is named again", defect=4)
        return
    if state.state != FAILED:
        sim.violate("everything finishes", f"{where} is still {state.state}")
        return
    outcomes = [entry.get("outcome") for entry in state.history]
    if state.last_error.startswith("Delivery kept crashing"):
        return  # a crash loop ends as designed (policy.settle_crashes)
    transient = outcomes.count("retrying")
    if state.last_error.startswith("Gave up") and transient >= steps:
        return
    # Defect 3: blocked re-checks counted as attempts. Found here: so are claims whose lease ran out (crashed).
    known = "crashed claims" if "crashed" in outcomes and "blocked" not in outcomes else None
    sim.violate("nothing failed before its schedule ran out",
                f"{where} failed after {transient} transient answers of {steps} ({state.last_error[:80]!r}; "
                f"history {outcomes})", defect=3 if "blocked" in outcomes else None, known=known)


def _check_imported(sim: Simulation, stored: set[str]) -> None:
    """Every row written to Partner Center's table is a lead (or was, and went with the purge), unless its person
    was forgotten or Partner Center stored it before the import horizon (Settings.import_horizon: older, a copy
    POSTed back then may be purged, and it would be sent again: SIM_SEED=204666932 before the horizon)."""
    horizon = sim.settings.import_horizon(sim.clock())
    # Where the import was told to begin (its first successful run: an hour back, importer.FIRST_RUN_LOOKBACK).
    mark = sim.main.tables[sim.settings.table].rows.get((keys.IMPORT_PARTITION, PC_TABLE))
    start = mark.entity.get("Start") if mark is not None else None
    for person in sim.people:
        written = person.written_to_pc
        if written is None or person.forgotten_at is not None or person.forget_pending:
            continue
        if person.email in stored or person.email in sim.purged_emails or (horizon is not None and written < horizon):
            continue
        if start is None or written < start:
            continue  # before the importer began: a backfill's (`import --since`), not the minute's
        sim.violate("every Partner Center row is imported", f"{person.email}'s row (written {written}) made no lead")
