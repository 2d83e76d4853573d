"""The driver of the deterministic simulation (tests/services/test_simulation.py): random steps of Partner
Center, the Functions host, the timers and the operators against the real services, with faults injected at
every storage call; the invariants checked after every step and at quiescence (tests/support/sim_checks.py).

A step is one thing the world does: a POST, a row in Partner Center's table, one queue message run by the
host, one sweep, one import run, a replay, a purge, a forget, a settings change (the app restarts), a crash,
a clock jump. Faults: `refuse` (503 before the write), `unreachable` (no connection), `lost` (the write done,
its answer lost), `crash` / `crash_after` (the process dies before / after the write), an outage (every call
refused for a while), and in a destination's call a crash after the destination has the lead."""

from __future__ import annotations

import base64
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError

from leads.core.errors import LeadsError
from leads.core.messages import DeliveryMessage
from leads.core.model import SENDING, StoredLead
from leads.services.privacy import Privacy
from leads.services.replay import leads_needing_attention, replay_leads
from leads.services.unreadable import decode_or_quarantine
from leads.storage.fallback_table import FALLBACK_TABLE
from leads.storage.table_store import deliveries_from_json
from tests.support import sim_checks
from tests.support.memory_storage import (
    CRASH_AFTER,
    CRASH_BEFORE,
    LOST,
    OK,
    REFUSE,
    UNREACHABLE,
    MemoryAccount,
    ProcessCrash,
    StorageCall,
)
from tests.support.sim_world import (
    DESTINATIONS,
    HOST_LEASE,
    HOST_RETRY_VISIBILITY,
    MAX_DEQUEUE,
    PC_TABLE,
    Person,
    Process,
    Send,
    VirtualClock,
    deterministic,
    settings_for,
)

STEP_WEIGHTS = {
    "post": 14, "partner_center_row": 4, "deliver": 30, "sweep": 8, "import": 5, "replay": 2, "purge": 1,
    "forget": 1, "settings": 2, "crash": 1, "clock_jump": 3, "tick": 12, "outage": 1,
}
FAULT_RATES = {REFUSE: 0.02, UNREACHABLE: 0.01, LOST: 0.015, CRASH_BEFORE: 0.002, CRASH_AFTER: 0.002}


@dataclass
class Violation:
    invariant: str
    detail: str
    step: int
    known: str | None = None  # the issue-16 defect (or point) this is a known case of: "defect 4", "point 4"

    def __str__(self) -> str:
        known = f" [issue 16 {self.known}]" if self.known else ""
        return f"step {self.step}: {self.invariant}{known}: {self.detail}"


@dataclass
class Report:
    seed: int
    steps: int = 0
    quiescence_steps: int = 0
    simulated: timedelta = timedelta()
    faults: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    leads: int = 0


class Simulation:
    def __init__(self, seed: int, steps: int, workdir: Path | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        self.report = Report(seed)
        self.steps = steps
        self.step_no = 0
        self.quiet = True  # no faults while the world is set up
        self.outage_until: datetime | None = None
        # Short pages: a query page may hold fewer rows than asked, even none, and still continue (as Azure's may).
        self.main = MemoryAccount(self.clock, self._fault("main"), short_pages=self.rng, name="main")
        self.fallback = MemoryAccount(self.clock, self._fault("fallback"), name="fallback")
        self.partner_center = MemoryAccount(self.clock, self._fault("partner_center"), name="partner_center")
        self._temp = None if workdir else tempfile.TemporaryDirectory()
        self.spool_dir = (workdir or Path(self._temp.name if self._temp else ".")) / "spool"
        self.destinations: tuple[str, ...] = DESTINATIONS
        self.moods: dict[str, str] = {}
        self.people: list[Person] = []
        self.by_email: dict[str, Person] = {}
        self.sends: Counter[tuple[str, str]] = Counter()  # (email, destination) -> calls that handed it over
        self.allowance: Counter[tuple[str, str]] = Counter()  # re-sends explained by a crash, lost answer, ...
        self.sent_ids: dict[tuple[str, str], set[str]] = {}  # (email, destination) -> lead ids handed over
        self.owners: dict[str, str] = {}  # lead id -> the e-mail of the person it was the answer to
        self.first_seen: dict[str, datetime] = {}  # lead id -> when its row was first in the main table
        self.purged_ok: set[str] = set()  # finished leads the retention purge deleted (as it should)
        self.purged_emails: set[str] = set()  # whose leads they were
        self.reported: set[tuple[str, str]] = set()  # each violation once
        self.last_kind = ""
        self.invocations: list[list[Send]] = []
        self.dirty_sends: set[tuple[str, str]] = set()  # checked after the step
        self.nested = False
        self.pc_rows = 0
        self.process: Process | None = None
        self.settings = settings_for(self.destinations, self.spool_dir)
        self._prepare_storage()

    # --- plumbing --------------------------------------------------------------------------------------------
    def _fault(self, account: str) -> Callable[[StorageCall], str]:
        def decide(call: StorageCall) -> str:
            if self.quiet:
                return OK
            if account == "main" and self.outage_until is not None:
                if self.clock() < self.outage_until:
                    self.report.faults["outage"] += 1
                    return REFUSE
                self.outage_until = None
            roll, edge = self.rng.random(), 0.0
            for kind, rate in FAULT_RATES.items():
                edge += rate / (2 if account != "main" else 1)
                if roll < edge:
                    if kind == LOST and not call.writes:
                        kind = UNREACHABLE  # noqa: PLW2901 - a read whose answer is lost is an error all the same
                    self.report.faults[kind] += 1
                    return kind
            return OK
        return decide

    def count(self, what: str) -> None:
        self.report.faults[what] += 1

    def _prepare_storage(self) -> None:
        """What the Bicep creates: the tables and queues (Partner Center's table is Partner Center's)."""
        s = self.settings
        for account, table in ((self.main, s.table), (self.main, s.quarantine_table), (self.fallback, FALLBACK_TABLE),
                               (self.partner_center, PC_TABLE)):
            account.table_service().get_table_client(table).create_table()
        for name in (s.queue, f"{s.queue}-poison"):
            self.main.queue_service().get_queue_client(name).create_queue()

    def proc(self) -> Process:
        while self.process is None:
            try:
                self.process = Process(self, self.settings)
            except ProcessCrash:
                self.count("crash_while_starting")
        return self.process

    def crash(self) -> None:
        """All in-memory state is gone: services, caches, breakers. Storage (and the disk) stays."""
        self.process = None
        self.report.actions["restart"] += 1

    # --- what the destinations see ---------------------------------------------------------------------------
    def handed_over(self, destination: str, stored: StoredLead) -> None:
        email = stored.lead.customer.email
        self.sends[(email, destination)] += 1
        self.dirty_sends.add((email, destination))
        self.sent_ids.setdefault((email, destination), set()).add(stored.id)
        person = self.by_email.get(email)
        if person is not None and person.forgotten_at is not None:
            self.violate("a forgotten person never comes back",
                         f"{destination} was sent lead {stored.id} of {email}, forgotten at {person.forgotten_at}",
                         known=None)
        if self.invocations:
            self.invocations[-1].append(Send(stored.id, email, destination,
                                             stored.deliveries[destination].lease_until))

    def slow_call(self, destination: str, stored: StoredLead) -> None:
        """The destination answers after the lease ran out; meanwhile another instance may take the lead over."""
        self.count("slow_destination")
        self.clock.advance(self.proc().settings.delivery_lease_seconds + self.rng.randint(1, 120))
        if not self.nested and self.rng.random() < 0.5:
            # A call slower than the lease: every destination of this claim not recorded yet may be sent again
            # (the pool here runs the calls in turn; in a process they run at once).
            lease = stored.deliveries[destination].lease_until
            for name, state in sim_checks.raw_deliveries(self, stored.id).items():
                if state.state == SENDING and state.lease_until == lease:
                    self.allowance[(stored.lead.customer.email, name)] += 1
            self.nested = True
            try:
                self._handle(self.proc().new_delivery(self), DeliveryMessage(stored.id))
            except LeadsError:
                pass
            finally:
                self.nested = False

    def _handle(self, delivery: Any, message: DeliveryMessage) -> None:
        """One delivery; afterwards each send whose answer its own worker did not record may happen again."""
        self.invocations.append([])
        try:
            delivery.handle(message)
        finally:
            for send in self.invocations.pop():
                state = sim_checks.raw_deliveries(self, send.lead_id).get(send.destination)
                if state is not None and state.state == SENDING and state.lease_until == send.lease_until:
                    self.allowance[(send.email, send.destination)] += 1

    # --- the steps -------------------------------------------------------------------------------------------
    def run(self) -> Report:
        with deterministic(self.clock, self.rng):
            started = self.clock()
            kinds, weights = list(STEP_WEIGHTS), list(STEP_WEIGHTS.values())
            for number in range(1, self.steps + 1):
                self.step_no = number
                kind = self.rng.choices(kinds, weights)[0]
                self.quiet = False
                self.step(kind)
                self.quiet = True
                sim_checks.after_step(self)
            self.report.steps = self.steps
            sim_checks.quiesce(self)
            self.report.simulated = self.clock() - started
            self.report.leads = sim_checks.lead_count(self)
        if self._temp is not None:
            self._temp.cleanup()
        return self.report

    def step(self, kind: str) -> None:
        self.report.actions[kind] += 1
        self.last_kind = kind
        try:
            getattr(self, f"_{kind}")()
        except ProcessCrash:
            self.crash()
        except (LeadsError, AzureError):
            self.report.actions[f"{kind}_failed"] += 1  # the trigger fails; the host or the timer runs it again

    def _new_person(self) -> Person:
        person = Person(len(self.people) + 1, self.rng.choice(["post", "post", "post", "import", "both"]))
        self.people.append(person)
        self.by_email[person.email] = person
        return person

    def _post(self, person: Person | None = None) -> None:
        if person is None:
            again = [p for p in self.people if p.via != "import" and p.forgotten_at is None and not p.forget_pending
                     and p.first_posted and self.clock() - p.first_posted < timedelta(hours=1)]
            person = self.rng.choice(again) if again and self.rng.random() < 0.3 else self._new_person()
            if person.via == "import":
                return self._partner_center_row(person)
        person.first_posted = person.first_posted or self.clock()
        answer = self.proc().ingest.receive("POST", person.body, "application/json")
        if answer.status == 202:
            sim_checks.accepted(self, person, str(answer.body["id"]))
        elif answer.status == 503:
            person.answered_503 += 1
        else:
            self.violate("a lead is accepted", f"POST of person {person.number} answered {answer.status}")
        if person.via == "both" and person.written_to_pc is None:
            self._partner_center_row(person)
        return None

    def _partner_center_row(self, person: Person | None = None) -> None:
        if person is None:
            waiting = [p for p in self.people if p.via != "post" and p.written_to_pc is None and p.forgotten_at is None]
            person = waiting[0] if waiting else self._new_person()
            if person.via == "post":
                return self._post(person)
        self.pc_rows += 1
        quiet, self.quiet = self.quiet, True  # Partner Center's own write: not the app's storage call
        try:
            self.partner_center.table_service().get_table_client(PC_TABLE).create_entity(
                person.pc_row(f"row-{self.pc_rows:06d}", self.clock()))
        finally:
            self.quiet = quiet
        person.written_to_pc = self.clock()
        return None

    def _deliver(self) -> None:
        """The host's queue trigger: lease one message, run the function, delete it or retry/poison it."""
        host = self.main.queue_service().get_queue_client(self.settings.queue)
        taken = list(host.receive_messages(max_messages=1, visibility_timeout=HOST_LEASE))
        if not taken:
            return
        message = taken[0]
        body = base64.b64decode(str(message.content))
        proc = self.proc()
        try:
            decoded = decode_or_quarantine(body, proc.table, self.settings.queue)
            if decoded is not None:
                self._handle(proc.delivery, decoded)
        except Exception:  # noqa: BLE001 - the host's answer to a failed function
            with suppress(AzureError):
                if (message.dequeue_count or 0) >= MAX_DEQUEUE:
                    poison = self.main.queue_service().get_queue_client(f"{self.settings.queue}-poison")
                    poison.send_message(message.content)
                    host.delete_message(message)
                    self.report.actions["poisoned"] += 1
                else:
                    host.update_message(message, visibility_timeout=HOST_RETRY_VISIBILITY)
            return
        with suppress(AzureError):
            host.delete_message(message)

    def _sweep(self) -> None:
        self.proc().sweeper.sweep()

    def _import(self) -> None:
        self.proc().importer.run()

    def _replay(self) -> None:
        rt = self.proc().runtime
        list(replay_leads(rt, leads_needing_attention(rt)))

    def _purge(self) -> None:
        before = sim_checks.unfinished_leads(self)
        try:
            Privacy(self.proc().runtime, now=self.clock()).purge()
        finally:
            sim_checks.after_purge(self, before)

    def _forget(self) -> None:
        pending = [p for p in self.people if p.forget_pending]
        candidates = pending or [p for p in self.people if p.accepted_ids and p.forgotten_at is None]
        if not candidates:
            return
        person = self.rng.choice(candidates)
        person.forget_pending = True  # never sent again; forgotten once a run of `forget` finishes
        person.forget_started = person.forget_started or self.clock()
        Privacy(self.proc().runtime, now=self.clock()).forget(person.email)
        person.forget_pending, person.forgotten_at = False, self.clock()
        sim_checks.after_forget(self, person)

    def _settings(self) -> None:
        """A setting changes (the app restarts): a destination removed or named again, broken or fixed."""
        name = self.rng.choice(DESTINATIONS)
        change = self.rng.random()
        if change < 0.4:
            named = set(self.destinations) ^ {name}
            self.destinations = tuple(d for d in DESTINATIONS if d in named) or DESTINATIONS
        elif change < 0.8:
            self.moods[name] = "ok" if self.moods.get(name, "ok") != "ok" else self.rng.choice(["broken", "flaky"])
        self.settings = settings_for(self.destinations, self.spool_dir)
        self.crash()

    def _crash(self) -> None:
        self.count("crash_between_steps")
        self.crash()

    def _clock_jump(self) -> None:
        self.count("clock_jump")
        self.clock.advance(self.rng.choice([600, 1800, 3600, 3 * 3600, 8 * 3600]))

    def _tick(self) -> None:
        self.clock.advance(self.rng.randint(1, 90))

    def _outage(self) -> None:
        self.count("outage_started")
        self.outage_until = self.clock() + timedelta(seconds=self.rng.randint(30, 1800))

    def violate(self, invariant: str, detail: str, defect: int | None = None, known: str | None = None) -> None:
        """`defect`: the number of a known issue-16 defect this is a case of; `known`: another known gap."""
        label = f"defect {defect}" if defect else known
        self.report.violations.append(Violation(invariant, detail, self.step_no, label))

    def raw_deliveries_of(self, entity: dict[str, Any]) -> dict[str, Any]:
        return deliveries_from_json(str(entity.get("Deliveries") or "{}"))
