"""Operational notices: tell the operator once when something needs a person, and again when it clears.

Conditions (one state row each, leads/storage/notice_table.py): `blocked:<destination>` (a configuration error:
the lead is blocked and the destination's circuit breaker opens, one notice for both), `failed:<destination>`
(a lead failed for good) and `silence` (no lead for LEADS_SILENCE_ALERT_DAYS). Each state is written
ETag-conditionally and a notice is sent only by the writer whose write won, so two instances never send the
same one. At most one notice per condition per LEADS_NOTICE_INTERVAL_SECONDS: events in between are counted
into the next ("3 more leads ..."), which the hourly review sends if no event does. A notice carries
destination names, counts, lead ids and the sentence that says what to do; never a lead's field: the
sentence is scrubbed of the lead's values before it is kept (a vendor's refusal may quote them).

This module is the decision: condition states, what an event or a clearance does to them, and the notice's
words. The service that stores states and sends notices is leads/services/ops_notices.py."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from leads.core.model import Lead

SILENCE = "silence"
BLOCKED_PREFIX = "blocked:"
FAILED_PREFIX = "failed:"
NEEDS_PERSON_PREFIX = "person:"  # `person:held` (a held lead storage refuses), `person:outbox` (a stuck chain)
LEAD_IDS_KEPT = 5  # lead ids named in one notice (the count says how many there were)
SENTENCE_KEPT = 600


@dataclass(frozen=True)
class ConditionState:
    condition: str
    open_since: datetime | None = None  # None: the condition is clear
    last_sent_at: datetime | None = None  # the last notice about it (any kind)
    announced: bool = False  # the notice that it opened went out (so its recovery is worth a notice)
    unsent: int = 0  # events not yet in a notice
    total: int = 0  # events since it opened
    lead_ids: tuple[str, ...] = ()  # the latest unsent ones
    sentence: str = ""  # the latest explanation (no lead data)

    @property
    def is_open(self) -> bool:
        return self.open_since is not None


@dataclass(frozen=True)
class Event:
    condition: str
    sentence: str
    lead_id: str = ""


@dataclass(frozen=True)
class Notice:
    condition: str
    kind: str  # opened | more | recovered
    subject: str
    text: str


class NoticeStore(Protocol):
    """Condition states with ETags. `save` with etag None creates; raises ConcurrentUpdateError when the row
    changed (or exists) meanwhile, StorageUnavailableError when storage does not answer."""

    def load(self, condition: str) -> tuple[ConditionState, str] | None: ...
    def save(self, state: ConditionState, etag: str | None) -> str: ...
    def all(self) -> list[tuple[ConditionState, str]]: ...
    def newest_arrival(self) -> datetime | None: ...


class NoticeSender(Protocol):
    """Where notices go (the ops e-mail; a chat sender can be added). Raises DestinationError on failure."""

    name: str

    def send(self, notice: Notice) -> None: ...


# --- decisions (pure) ----------------------------------------------------------------------------------------

def on_event(state: ConditionState | None, event: Event, now: datetime, interval: timedelta) \
        -> tuple[ConditionState, bool]:
    """The state after `event`, and whether a notice is due now (the caller builds it from the state)."""
    current = state or ConditionState(event.condition)
    if not current.is_open:
        current = replace(current, open_since=now, announced=False, unsent=0, total=0, lead_ids=())
    lead_ids = (*current.lead_ids, event.lead_id)[-LEAD_IDS_KEPT:] if event.lead_id else current.lead_ids
    counted = replace(current, unsent=current.unsent + 1, total=current.total + 1, lead_ids=lead_ids,
                      sentence=event.sentence[:SENTENCE_KEPT] or current.sentence)
    return counted, is_due(counted, now, interval)


def is_due(state: ConditionState, now: datetime, interval: timedelta) -> bool:
    return state.is_open and state.unsent > 0 and (state.last_sent_at is None or
                                                   now - state.last_sent_at >= interval)


def sent(state: ConditionState, now: datetime) -> ConditionState:
    return replace(state, last_sent_at=now, announced=True, unsent=0, lead_ids=())


def on_clear(state: ConditionState, now: datetime) -> tuple[ConditionState, bool]:
    """The condition cleared: closed, and a recovery notice is due if its opening was announced."""
    return replace(state, open_since=None, unsent=0, lead_ids=(), announced=False,
                   last_sent_at=now if state.announced else state.last_sent_at), state.announced


# --- what a notice says ---------------------------------------------------------------------------------------

def build_notice(state: ConditionState, kind: str, now: datetime, console_url: str = "",
                 days: int = 0, interval: timedelta = timedelta(hours=1)) -> Notice:
    kind_of, _, destination = state.condition.partition(":")
    ids = ", ".join(state.lead_ids)
    link = _console(console_url, state.lead_ids[-1] if state.lead_ids else "")
    since = moment_text(state.open_since) if state.open_since else "earlier"
    if kind == "recovered":
        subject, lines = _recovered(kind_of, destination, state, since, now)
    elif kind_of == "blocked":
        subject = f"Marketplace leads: {destination} is blocked"
        lines = [f"{destination} cannot be used with the app's current settings, so leads are not reaching it "
                 f"({_count(state)}"
                 f"{' since ' + since if kind == 'more' else ''}): {state.sentence}",
                 f"Calls to {destination} are paused a few minutes at a time (its circuit breaker) and blocked "
                 "leads are tried again hourly: nothing is lost. Fix the setting named above (app settings, then "
                 "restart), check it with `python -m leads doctor`, and send the waiting leads at once with "
                 "`python -m leads replay --failed`. You get one more e-mail when it works again."]
    elif kind_of == "failed":
        subject = f"Marketplace leads: {_count(state)} failed for good at {destination}"
        lines = [f"{_count(state).capitalize()} could not be delivered to {destination} and will not be retried"
                 f"{' (since ' + since + ')' if kind == 'more' else ''}. The latest reason: {state.sentence}",
                 "Each lead is kept in the app's table. Fix the cause, then replay them with "
                 "`python -m leads replay --failed` (or `python -m leads replay <lead id>`)."]
    elif kind_of == NEEDS_PERSON_PREFIX[:-1]:
        subject = f"Marketplace leads: {_count(state)} need a person ({destination})"
        lines = [f"{state.sentence}", "Nothing else stops meanwhile. See docs/troubleshooting.md, then act on the "
                 "sentence above (the lead ids are below)."]
    else:
        subject = f"Marketplace leads: no lead for {days} days"
        lines = [f"No lead, test or real, has arrived for {days} days: {state.sentence}",
                 "If leads are expected: in Partner Center, open the offer's Customer leads page and press "
                 "Validate (it sends a test lead); check that the HTTPS endpoint there still ends in "
                 "/api/leads?code=<function key> and that /api/health answers 200. Set "
                 "LEADS_SILENCE_ALERT_DAYS=0 to turn this notice off."]
    if ids and kind != "recovered":
        lines.append(f"Lead ids: {ids}" + (" (the latest)" if state.unsent > len(state.lead_ids) else ""))
    if link:
        lines.append(f"Console: {link}")
    lines.append(f"This notice carries no lead data. At most one per condition every {_span(interval)} "
                 "(LEADS_NOTICE_INTERVAL_SECONDS), to LEADS_OPS_EMAIL_TO.")
    return Notice(state.condition, kind, subject, "\n\n".join(lines) + "\n")


def _recovered(kind_of: str, destination: str, state: ConditionState, since: str, now: datetime) \
        -> tuple[str, list[str]]:
    if kind_of == SILENCE:
        return ("Marketplace leads: leads arrive again",
                [f"A lead arrived again (the silence was noticed {since})."])
    what = "was blocked" if kind_of == "blocked" else "had leads that failed for good"
    return (f"Marketplace leads: {destination} works again",
            [f"{destination} accepted a lead at {moment_text(now)}. It {what} since {since} "
             f"({state.total} lead{'s' if state.total != 1 else ''} affected). Leads still marked failed or "
             "blocked go out with `python -m leads replay --failed`."])


def _count(state: ConditionState) -> str:
    number = state.unsent or state.total
    more = " more" if state.announced else ""
    return f"{number}{more} lead{'s' if number != 1 else ''}"


def _span(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


def moment_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _console(console_url: str, lead_id: str) -> str:
    if not console_url:
        return ""
    base = console_url.rstrip("/")
    return f"{base}#/leads/{urllib.parse.quote(lead_id, safe='')}" if lead_id else base


def scrub(sentence: str, lead: Lead | None) -> str:
    """The sentence without any value of the lead (a vendor's refusal can quote a name or an address)."""
    if lead is None:
        return sentence
    customer = lead.customer
    values = [customer.first_name, customer.last_name, customer.full_name, customer.email, customer.phone,
              customer.company, customer.title, lead.description]
    for value in sorted({v.strip() for v in values if v and len(v.strip()) >= 3}, key=len, reverse=True):
        sentence = _replace_folded(sentence, value, "[lead field]")
    return sentence


def _replace_folded(text: str, value: str, by: str) -> str:
    lowered, needle, out, start = text.lower(), value.lower(), [], 0
    while (index := lowered.find(needle, start)) >= 0:
        out += [text[start:index], by]
        start = index + len(needle)
    return "".join(out) + text[start:]
