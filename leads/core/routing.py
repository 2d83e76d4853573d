"""Which destinations take a lead: the LEADS_ROUTES rules and the defaults, as plain functions. No I/O.

A rule names one destination (as LEADS_DESTINATIONS does: `hubspot`, `salesforce:emea`) and the leads it
takes; rules are separated by `;` or a new line:

    salesforce:emea country=DE,FR,IT; salesforce:us country=US,CA action!=DNC; webhook dnc=include

`offer=`, `action=`, `country=` take a lead whose value is one of the list; `!=` leaves those out. `test=`,
`edu=`, `dnc=` are `include`, `exclude` or `only`. Every condition of a rule must hold. Without a rule (or
a flag the rule does not give): Partner Center's test leads skip CRMs unless LEADS_FORWARD_TEST_LEADS is on,
and do-not-contact (DNC) leads go to notifications only (e-mail, Teams, Slack): never to a CRM nor to the
webhook, whose receiver is often an automation that contacts people (docs/destinations.md, "Routing")."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from leads.core import countries
from leads.core.model import ACTION_MEANINGS, Lead

CRM_TYPES = frozenset({"dynamics", "salesforce", "marketo", "hubspot"})
NOTIFICATION_TYPES = frozenset({"email", "teams", "slack"})  # where a DNC lead goes by default
FLAGS = ("test", "edu", "dnc")
LISTS = ("offer", "action", "country")
MODES = ("include", "exclude", "only")
_ALIASES = {"offers": "offer", "actions": "action", "countries": "country", "tests": "test", "country_code": "country"}
_MODE_ALIASES = {"yes": "include", "true": "include", "no": "exclude", "false": "exclude"}
_WHAT = {"test": "Partner Center test leads (MSFT_TEST)", "edu": ".edu leads",
         "dnc": "do-not-contact (DNC) leads"}
_EXAMPLES = {"offer": "offer=contoso.analytics", "action": "action=INS,PLT", "country": "country=DE,FR",
             "test": "test=include", "edu": "edu=exclude", "dnc": "dnc=include"}
_SHORT = {"test": "test leads", "edu": ".edu leads", "dnc": "DNC leads"}
_CONDITION = re.compile(r"([A-Za-z_]+)\s*(!=|=)\s*")
_QUOTED = 60  # characters of a bad part quoted in a sentence

TEST_LEAD_SKIP = (
    "Partner Center test lead (MSFT_TEST): not forwarded to CRMs. Set LEADS_FORWARD_TEST_LEADS=true to "
    "forward test leads too."
)


def destination_type(name: str) -> str:
    """`salesforce:emea` -> `salesforce`; a plain name is its type."""
    return name.split(":", 1)[0]


@dataclass(frozen=True)
class Condition:
    field: str  # offer, action or country
    values: tuple[str, ...]  # as compared: upper-case codes, lower-case offers
    excluded: bool = False  # written `!=`


@dataclass(frozen=True)
class Rule:
    destination: str
    conditions: tuple[Condition, ...] = ()
    flags: Mapping[str, str] = field(default_factory=dict, hash=False)  # test/edu/dnc -> include|exclude|only


@dataclass
class ParsedRoutes:
    rules: dict[str, Rule] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # destination -> sentence (it is blocked)
    warnings: list[str] = field(default_factory=list)  # a rule that concerns no listed destination (ignored)


class _BadRule(Exception):
    pass


def parse_routes(text: str, destinations: Iterable[str]) -> ParsedRoutes:
    """Each rule for a listed destination, or the sentence naming its bad part (that destination alone is
    then blocked: a rule the app cannot read must not send it leads it was meant not to get)."""
    listed = tuple(destinations)
    parsed = ParsedRoutes()
    for written in (part.strip() for part in re.split(r"[;\n]", text)):
        if not written:
            continue
        name, rest = [*written.split(None, 1), ""][:2]
        name = name.rstrip(":").lower()
        if _CONDITION.match(written) or not name:
            parsed.warnings.append(f"LEADS_ROUTES: the rule {_quote(written)} does not start with a destination: "
                                   "write its name first, as in hubspot country=US,CA. The rule is ignored.")
            continue
        if name not in listed:
            close = difflib.get_close_matches(name, listed, n=1)
            hint = f"did you mean {close[0]}?" if close else "add it there or remove the rule."
            parsed.warnings.append(f"LEADS_ROUTES has a rule for {name}, which LEADS_DESTINATIONS does not list: "
                                   f"{hint} The rule is ignored.")
            continue
        if name in parsed.rules or name in parsed.problems:
            parsed.rules.pop(name, None)
            parsed.problems[name] = (f"LEADS_ROUTES has two rules for {name}: put all of its conditions in one "
                                     "(separated by spaces).")
            continue
        try:
            parsed.rules[name] = _rule(name, rest)
        except _BadRule as error:
            parsed.problems[name] = f"LEADS_ROUTES: {error}"
    return parsed


def _rule(name: str, text: str) -> Rule:
    markers = list(_CONDITION.finditer(text))
    before = text[:markers[0].start()] if markers else text
    if before.strip():
        raise _BadRule(f"the rule for {name} has {_quote(before.strip())} where a condition such as country=DE "
                       "belongs.")
    if not markers:
        raise _BadRule(f"the rule for {name} has no condition: write one such as country=DE or dnc=include, "
                       "or remove the rule.")
    conditions: list[Condition] = []
    flags: dict[str, str] = {}
    seen: set[str] = set()
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        written = marker.group(1).lower()
        key = _ALIASES.get(written, written)
        raw = text[marker.end():following.start() if following else len(text)]
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if key not in (*LISTS, *FLAGS):
            close = difflib.get_close_matches(key, (*LISTS, *FLAGS), n=1)
            hint = f"did you mean {close[0]}?" if close else "use offer, action, country, test, edu or dnc."
            raise _BadRule(f"the rule for {name} names {_quote(written)}, which is not a condition: {hint}")
        if key in seen:
            raise _BadRule(f"the rule for {name} names {key} twice: put every value in one {key}=, separated by "
                           "commas.")
        seen.add(key)
        if not values:
            raise _BadRule(f"the rule for {name} gives {key} no value: write e.g. {_EXAMPLES[key]}.")
        if key in FLAGS:
            flags[key] = _mode(name, key, marker.group(2), values)
        else:
            conditions.append(Condition(key, tuple(_value(name, key, v) for v in values), marker.group(2) == "!="))
    actions = next((c for c in conditions if c.field == "action" and not c.excluded), None)
    if actions is not None and "dnc" in flags:
        raise _BadRule(f"the rule for {name} has both action= and dnc=: with action= its list decides whether DNC "
                       "leads are taken (add DNC to it, or leave it out), so drop dnc=.")
    return Rule(name, tuple(conditions), flags)


def _mode(name: str, key: str, operator: str, values: tuple[str, ...]) -> str:
    mode = _MODE_ALIASES.get(values[0].lower(), values[0].lower()) if len(values) == 1 else ""
    if operator == "!=" or mode not in MODES:
        written = f"{key}{operator}{','.join(values)}"
        raise _BadRule(f"the rule for {name} has {_quote(written)}: {key} is include, exclude or only "
                       f"(e.g. {key}=exclude).")
    return mode


def _value(name: str, key: str, value: str) -> str:
    if key == "offer":
        return value.lower()
    if key == "action":
        code = value.upper()
        if code not in ACTION_MEANINGS:
            close = difflib.get_close_matches(code, list(ACTION_MEANINGS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _BadRule(f"{name} names action {_quote(value)}, which is not a Partner Center action code{hint}: "
                           f"use {', '.join(ACTION_MEANINGS)}.")
        return code
    code = value.upper()
    if countries.is_code(code):
        return code
    known = countries.to_code(value)
    if known:
        raise _BadRule(f"{name} names country {_quote(value)}: use ISO codes like {known}.")
    raise _BadRule(f"{name} names country {_quote(value)}, which is not an ISO 3166 country: use two-letter "
                   "codes like DE or US.")


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTED else text[:_QUOTED] + "…")


@dataclass(frozen=True)
class Routing:
    """The configured destinations with their rules: which of them take a given lead, and why not."""

    destinations: tuple[str, ...]
    rules: Mapping[str, Rule] = field(default_factory=dict, hash=False)
    forward_test_leads: bool = False
    # Destinations whose rule could not be read: they take every lead, to be `blocked` by that sentence, so the
    # rule decides once it is fixed (policy.reconcile) rather than a default meanwhile.
    unreadable: frozenset[str] = frozenset()

    def skip_reason(self, lead: Lead, name: str) -> str:
        """"" when `name` takes the lead, else the sentence saying why it is not sent (its `skipped`)."""
        if name in self.unreadable:
            return ""
        rule = self.rules.get(name)
        flags = rule.flags if rule else {}
        for flag, applies in (("test", lead.is_test), ("edu", lead.is_edu), ("dnc", lead.action.upper() == "DNC")):
            mode = flags.get(flag) or self._default(name, flag, rule)
            if mode == "exclude" and applies:
                return self._default_sentence(name, flag) if flag not in flags else (
                    f"Not sent: the rule for {name} leaves out {_WHAT[flag]}; this lead is one.")
            if mode == "only" and not applies:
                return f"Not sent: the rule for {name} takes {_WHAT[flag]} only; this lead is not one."
        for condition in rule.conditions if rule else ():
            if _holds(condition, lead) == condition.excluded:
                verb = "leaves out" if condition.excluded else "takes"
                values = ", ".join(condition.values)
                return (f"Not sent: the rule for {name} {verb} {condition.field} {values}; this lead's "
                        f"{condition.field} is {_shown(condition.field, lead)}.")
        return ""

    def takes(self, lead: Lead) -> dict[str, str]:
        """Each configured destination -> "" (it takes the lead) or why it does not."""
        return {name: self.skip_reason(lead, name) for name in self.destinations}

    def describe(self, name: str) -> str:
        """Which leads `name` takes, in a few words (status, console, doctor)."""
        rule = self.rules.get(name)
        parts = [f"{c.field}{' not' if c.excluded else ''} {', '.join(c.values)}" for c in rule.conditions] if rule \
            else []
        for flag in FLAGS:
            mode = (rule.flags.get(flag) if rule else "") or self._default(name, flag, rule)
            what = _SHORT[flag]
            if mode == "exclude":
                parts.append(f"no {what}")
            elif mode == "only":
                parts.append(f"{what} only")
        return "; ".join(parts) if parts else "every lead"

    def _default(self, name: str, flag: str, rule: Rule | None) -> str:
        kind = destination_type(name)
        if flag == "test":
            return "exclude" if kind in CRM_TYPES and not self.forward_test_leads else "include"
        if flag == "dnc":
            if rule and any(c.field == "action" and not c.excluded for c in rule.conditions):
                return "include"  # the rule's own action list decides
            return "include" if kind in NOTIFICATION_TYPES else "exclude"
        return "include"

    @staticmethod
    def _default_sentence(name: str, flag: str) -> str:
        if flag == "test":
            return TEST_LEAD_SKIP
        return (f"Not sent: do-not-contact (DNC) leads go to notifications only (e-mail, Teams, Slack), not to "
                f"{name}. To send them there too, add dnc=include to its rule in LEADS_ROUTES ({name} dnc=include).")


def _holds(condition: Condition, lead: Lead) -> bool:
    if condition.field == "offer":
        source = lead.lead_source
        names = {source.offer.lower(), source.offer_id.lower(), lead.offer_title.strip().lower()} - {""}
        return bool(names & set(condition.values))
    if condition.field == "action":
        return lead.action.upper() in condition.values
    return countries.to_code(lead.customer.country) in condition.values


def _shown(key: str, lead: Lead) -> str:
    if key == "offer":
        return repr(lead.lead_source.offer or lead.offer_title) if (lead.lead_source.offer or lead.offer_title) \
            else "not given"
    if key == "action":
        return lead.action.upper() or "not given"
    country = lead.customer.country.strip()
    if not country:
        return "not given"
    code = countries.to_code(country)
    return code if code == country.upper() else f"{country[:_QUOTED]!r} ({code or 'not an ISO country'})"
