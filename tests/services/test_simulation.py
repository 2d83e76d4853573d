"""Deterministic simulation (issue 16 point 6): the real services on the in-memory Azure Table and Queue,
with faults at every storage call, settings changed mid-flight, crashes and clock jumps; the invariants
checked after every step and at quiescence (tests/support/simulation.py, sim_checks.py).

    SIM_STEPS=1000000 .venv/bin/python -m pytest -q tests/services/test_simulation.py   # more steps
    SIM_SEED=1234 .venv/bin/python -m pytest -q tests/services/test_simulation.py       # replay one run
    SIM_BASE_SEED=random .venv/bin/python -m pytest -q tests/services/test_simulation.py  # other seeds than make test's

A violation that is a known case of an issue-16 defect is reported with it and kept apart: each such defect
has a strict xfail below, so the lead engineer flips it once the fix is merged; any other violation fails
the first test."""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.support.simulation import Report, Simulation, Violation

# About 130 s of CPU for the default 100,000 steps; the wall clock is longer on a shared machine (docs/measurements.md).
pytestmark = pytest.mark.timeout(1200)
STEPS_PER_RUN = 400
DEFAULT_STEPS = 100_000


@dataclass
class Outcome:
    reports: list[Report] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: what the run costs on a machine nobody else uses

    def violations(self, known: str | None) -> list[tuple[int, Violation]]:
        return [(r.seed, v) for r in self.reports for v in r.violations if v.known == known]


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    fixed = os.environ.get("SIM_SEED")
    total = int(os.environ.get("SIM_STEPS", str(DEFAULT_STEPS)))
    # `make test` runs the same 250 seeds every time, so that a landing never depends on luck; SIM_BASE_SEED=random
    # (or any number) explores others. The base below ran clean but for the known gaps printed (issue 16 note).
    chosen = os.environ.get("SIM_BASE_SEED", "204666838")
    base = secrets.randbelow(10**9) if chosen == "random" else int(chosen)
    seeds = [int(fixed)] if fixed else [base + i for i in range(max(1, total // STEPS_PER_RUN))]
    steps = total if fixed and "SIM_STEPS" in os.environ else STEPS_PER_RUN
    result, started, cpu = Outcome(), time.perf_counter(), time.process_time()
    for seed in seeds:
        result.reports.append(Simulation(seed, steps).run())
    result.seconds, result.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return result


def _summary(result: Outcome) -> str:
    steps = sum(r.steps for r in result.reports)
    quiet = sum(r.quiescence_steps for r in result.reports)
    faults: Counter[str] = Counter()
    for report in result.reports:
        faults.update(report.faults)
    simulated = sum((r.simulated.total_seconds() for r in result.reports), 0.0) / 86400
    seeds = [r.seed for r in result.reports]
    return (f"simulation: {len(seeds)} runs (seeds {seeds[0]}..{seeds[-1]}, each replays with SIM_SEED=<seed>), "
            f"{steps} steps + {quiet} at quiescence in {result.seconds:.1f} s wall ({steps / result.seconds:.0f} "
            f"steps/s), {result.cpu_seconds:.1f} s CPU ({steps / result.cpu_seconds:.0f} steps/s), {simulated:.1f} "
            f"simulated days, {sum(r.leads for r in result.reports)} leads; "
            f"faults: {dict(sorted(faults.items()))}")


def test_the_simulation_keeps_every_invariant(outcome: Outcome, figure: Callable[[str], None]) -> None:
    figure(_summary(outcome))
    known = Counter(v.known for r in outcome.reports for v in r.violations if v.known)
    figure(f"simulation: known cases seen (counted, not failures): {dict(sorted(known.items()))}")
    unknown = outcome.violations(None)
    assert not unknown, "\n".join(f"SIM_SEED={seed} {violation}" for seed, violation in unknown[:20])
    if not os.environ.get("SIM_SEED"):  # one seed replayed runs one run's steps
        assert sum(r.steps for r in outcome.reports) >= min(DEFAULT_STEPS, int(os.environ.get("SIM_STEPS",
                                                                                             DEFAULT_STEPS)))
    assert sum(r.faults["lost"] + r.faults["crash"] + r.faults["crash_after"] for r in outcome.reports) > 0


@pytest.mark.parametrize("known", ["defect 4", "defect 6", "defect 10"])
def test_the_simulation_finds_no_case_of(known: str, outcome: Outcome) -> None:
    """Seen hundreds of times in every run of the default size. The rarer ones (defects 2, 3, 5; point 4, a
    forgotten person imported again; crashed claims using up the retry budget: a few to a few dozen cases in
    100,000 steps) are printed by the test above and each has its scenario in test_defect_scenarios.py: a
    strict xfail here would pass by chance now and then."""
    if len(outcome.reports) < 100:
        pytest.skip("too few runs to be sure to meet it (SIM_SEED or a small SIM_STEPS)")
    found = outcome.violations(known)
    assert not found, f"{len(found)} case(s), e.g. " + "; ".join(f"SIM_SEED={s} {v}" for s, v in found[:3])


def test_a_seed_replays_exactly() -> None:
    first, second = Simulation(20261206, 150).run(), Simulation(20261206, 150).run()
    assert (first.faults, first.actions, first.leads, first.simulated) == \
        (second.faults, second.actions, second.leads, second.simulated)
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]
    assert sum(first.actions.values()) > 150


def _unknown(report: Report) -> list[str]:
    return [v.invariant for v in report.violations if v.known is None]


def test_the_checks_see_a_destination_sent_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the product on purpose (a delivered destination is due again): the simulation must say so."""
    from leads.core import policy, transitions

    due = policy._due
    monkeypatch.setattr(policy, "_due", lambda state, now: state.state == "delivered" or due(state, now))
    # The transition table refuses to claim a delivered destination: that rule broken too, on purpose.
    monkeypatch.setitem(transitions.TRANSITIONS, "delivered", {transitions.CLAIM: frozenset({"sending"})})
    assert "each destination receives a lead at most once (plus once per unrecorded send)" in \
        _unknown(Simulation(7, 150).run())


def test_the_checks_see_an_accepted_lead_that_was_not_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the product on purpose (ingest answers 202 without storing): the simulation must say so."""
    from leads.core.ports import Added
    from leads.storage.table_store import LeadTable

    monkeypatch.setattr(LeadTable, "add", lambda self, stored, *a, **k: Added(stored.id, duplicate=False, etag="x"))
    assert "every accepted lead is stored" in _unknown(Simulation(7, 150).run())
