"""Named destinations and LEADS_ROUTES (plain Python): each bad part gets its sentence, each rule decides which
leads a destination takes and says why it does not take one, and the defaults keep test and do-not-contact
leads out of CRMs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leads.core import policy
from leads.core.model import (
    BLOCKED,
    DELIVERED,
    PARKED,
    PENDING,
    RETRYING,
    SKIPPED,
    Customer,
    DeliveryState,
    Lead,
    LeadSource,
    StoredLead,
)
from leads.core.routing import Routing, parse_routes
from leads.core.settings import Settings, instance_setting_name, load_settings, secret_setting_names
from leads.destinations import usable_destination
from leads.services import doctor

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
DESTINATIONS = ("email", "webhook:partners", "webhook:ops", "salesforce:emea", "hubspot")


def settings(**env: str) -> Settings:
    return load_settings({**BASE, **env})


def lead(country: str = "US", action: str = "INS", offer: str = "contoso.analytics", **more: object) -> Lead:
    return Lead(customer=Customer(email="ada@contoso.example", country=country), action_code=action,
                lead_source=LeadSource(raw=f"AzureMarketplace|{offer}", source="AzureMarketplace", offer=offer),
                offer_title="Contoso Analytics", **more)  # type: ignore[arg-type]


def routing(text: str, forward_test_leads: bool = False) -> Routing:
    parsed = parse_routes(text, DESTINATIONS)
    assert parsed.problems == {} and parsed.warnings == []
    return Routing(DESTINATIONS, parsed.rules, forward_test_leads)


# --- names -------------------------------------------------------------------------------------------------

def test_a_named_destination_reads_its_type_settings_from_its_own_prefix_and_never_the_types() -> None:
    loaded = settings(LEADS_DESTINATIONS="email,webhook,webhook:partners,email:sales",
                      LEADS_WEBHOOK_URL="https://main.example/hook", LEADS_WEBHOOK_SECRET="m" * 32,
                      LEADS_WEBHOOK_PARTNERS_URL="https://partners.example/hook",
                      LEADS_WEBHOOK_PARTNERS_SECRET="p" * 32,
                      LEADS_EMAIL_SALES_TO="sales@contoso.example", LEADS_EMAIL_SALES_SMTP_HOST="smtp.contoso.example",
                      LEADS_SMTP_HOST="smtp.main.example")
    assert loaded.destinations == ("email", "webhook", "webhook:partners", "email:sales")
    assert loaded.problems == {}
    partners = loaded.for_destination("webhook:partners").webhook
    assert (partners.url, partners.secret) == ("https://partners.example/hook", "p" * 32)
    assert loaded.for_destination("webhook").webhook.url == "https://main.example/hook"
    sales = loaded.for_destination("email:sales").email
    assert (sales.to, sales.host) == (("sales@contoso.example",), "smtp.contoso.example")
    # Nothing falls back on the type's own settings: a second webhook never posts to the first one's URL.
    assert settings(LEADS_DESTINATIONS="webhook:ops", LEADS_WEBHOOK_URL="https://main.example/hook") \
        .for_destination("webhook:ops").webhook.url == ""


def test_instance_setting_names() -> None:
    assert instance_setting_name("LEADS_WEBHOOK_URL", "webhook", "partners") == "LEADS_WEBHOOK_PARTNERS_URL"
    assert instance_setting_name("LEADS_SALESFORCE_ORG_ID", "salesforce", "emea") == "LEADS_SALESFORCE_EMEA_ORG_ID"
    assert instance_setting_name("LEADS_SMTP_HOST", "email", "sales") == "LEADS_EMAIL_SALES_SMTP_HOST"
    assert instance_setting_name("LEADS_AUTHORITY_HOST", "dynamics", "eu") == "LEADS_DYNAMICS_EU_AUTHORITY_HOST"


@pytest.mark.parametrize(("listed", "name", "sentence"), [
    ("email,webhok:partners", "webhok:partners",
     "LEADS_DESTINATIONS names webhok:partners, which is not a destination: did you mean webhook?"),
    ("email,webhook:eu-west", "webhook:eu-west",
     "LEADS_DESTINATIONS names webhook:eu-west: the name after webhook: must be letters and digits (at most 20, "
     "starting with a letter), as it becomes part of its settings' names, e.g. LEADS_WEBHOOK_EUWEST_URL."),
])
def test_a_bad_destination_name_blocks_it_alone_with_a_sentence(listed: str, name: str, sentence: str) -> None:
    loaded = settings(LEADS_DESTINATIONS=listed)
    assert loaded.problems == {name: sentence}


def test_a_named_destinations_bad_setting_blocks_it_alone_naming_its_own_setting() -> None:
    loaded = settings(LEADS_DESTINATIONS="webhook:partners,webhook:ops",
                      LEADS_WEBHOOK_PARTNERS_URL="https://partners.example/hook",
                      LEADS_WEBHOOK_PARTNERS_SECRET="p" * 32,
                      LEADS_WEBHOOK_OPS_URL="http://ops.example/hook")
    assert loaded.problems == {"webhook:ops": "LEADS_WEBHOOK_OPS_URL must start with https:// (plain http is only "
                                              "allowed to localhost)."}
    # A setting the module itself finds missing is named the instance's way too.
    unset = settings(LEADS_DESTINATIONS="webhook:ops", LEADS_WEBHOOK_OPS_URL="https://ops.example/hook")
    [check] = usable_destination("webhook:ops", unset).check()
    assert check.destination == "webhook:ops" and not check.ok
    assert "LEADS_WEBHOOK_OPS_SECRET is not set" in check.message and "LEADS_WEBHOOK_SECRET" not in check.message


def test_the_doctor_scrubs_a_named_destinations_secret() -> None:
    env = {**BASE, "LEADS_DESTINATIONS": "email,hubspot:emea", "LEADS_HUBSPOT_EMEA_TOKEN": "pat-eu1-secret-token-value"}
    assert "LEADS_HUBSPOT_EMEA_TOKEN" in secret_setting_names(env)
    assert doctor.scrub("token pat-eu1-secret-token-value refused", doctor.secret_values(env)) == \
        "token [redacted] refused"


# --- LEADS_ROUTES: each bad part, its sentence ---------------------------------------------------------------

@pytest.mark.parametrize(("rule", "sentence"), [
    ("hubspot country=Germany", "LEADS_ROUTES: hubspot names country 'Germany': use ISO codes like DE."),
    ("hubspot country=DEU", "LEADS_ROUTES: hubspot names country 'DEU': use ISO codes like DE."),
    ("hubspot country=XX", "LEADS_ROUTES: hubspot names country 'XX', which is not an ISO 3166 country: use "
                           "two-letter codes like DE or US."),
    ("hubspot action=INSTALL", "LEADS_ROUTES: hubspot names action 'INSTALL', which is not a Partner Center action "
                               "code (did you mean INS?): use INS, PLT, DNC, CREATE, STARTTESTDRIVE."),
    ("hubspot region=EU", "LEADS_ROUTES: the rule for hubspot names 'region', which is not a condition: use offer, "
                          "action, country, test, edu or dnc."),
    ("hubspot contry=DE", "LEADS_ROUTES: the rule for hubspot names 'contry', which is not a condition: did you "
                          "mean country?"),
    ("hubspot country=", "LEADS_ROUTES: the rule for hubspot gives country no value: write e.g. country=DE,FR."),
    ("hubspot country=DE country=FR", "LEADS_ROUTES: the rule for hubspot names country twice: put every value in "
                                      "one country=, separated by commas."),
    ("hubspot test=maybe", "LEADS_ROUTES: the rule for hubspot has 'test=maybe': test is include, exclude or only "
                           "(e.g. test=exclude)."),
    ("hubspot dnc!=include", "LEADS_ROUTES: the rule for hubspot has 'dnc!=include': dnc is include, exclude or "
                             "only (e.g. dnc=exclude)."),
    ("hubspot action=INS dnc=include", "LEADS_ROUTES: the rule for hubspot has both action= and dnc=: with action= "
                                       "its list decides whether DNC leads are taken (add DNC to it, or leave it "
                                       "out), so drop dnc=."),
    ("hubspot takes Germany", "LEADS_ROUTES: the rule for hubspot has 'takes Germany' where a condition such as "
                              "country=DE belongs."),
    ("hubspot", "LEADS_ROUTES: the rule for hubspot has no condition: write one such as country=DE or dnc=include, "
                "or remove the rule."),
    ("hubspot country=US; hubspot action=PLT", "LEADS_ROUTES has two rules for hubspot: put all of its conditions "
                                               "in one (separated by spaces)."),
])
def test_each_bad_part_of_a_rule_blocks_its_destination_alone_with_a_sentence(rule: str, sentence: str) -> None:
    loaded = settings(LEADS_DESTINATIONS="email,hubspot", LEADS_HUBSPOT_TOKEN="pat-na1-0000",
                      LEADS_ROUTES=f"email country=US,CA; {rule}")
    assert loaded.problems == {"hubspot": sentence}
    assert list(loaded.routes) == ["email"]  # the good rule still applies
    blocked = usable_destination("hubspot", loaded).check()
    assert [(c.ok, c.message) for c in blocked] == [(False, sentence)]


@pytest.mark.parametrize(("text", "sentence"), [
    ("hubsopt country=US", "LEADS_ROUTES has a rule for hubsopt, which LEADS_DESTINATIONS does not list: did you "
                           "mean hubspot? The rule is ignored."),
    ("country=US", "LEADS_ROUTES: the rule 'country=US' does not start with a destination: write its name first, "
                   "as in hubspot country=US,CA. The rule is ignored."),
])
def test_a_rule_for_no_listed_destination_is_a_warning_and_blocks_nothing(text: str, sentence: str) -> None:
    loaded = settings(LEADS_DESTINATIONS="email,hubspot", LEADS_ROUTES=text)
    assert loaded.problems == {}
    assert loaded.warnings == {"LEADS_ROUTES": sentence}


def test_rules_are_written_the_way_people_type_them() -> None:
    loaded = settings(LEADS_DESTINATIONS="email,salesforce:emea,hubspot", LEADS_ROUTES=(
        "salesforce:emea: Countries = de, FR , it  offer=Contoso.Analytics,fabrikam.router\n"
        "hubspot actions=ins,Plt test=yes;; email dnc=only"))
    assert loaded.problems == {} and loaded.warnings == {}
    assert loaded.routing.describe("salesforce:emea") == \
        "country DE, FR, IT; offer contoso.analytics, fabrikam.router; no test leads; no DNC leads"
    assert loaded.routing.describe("hubspot") == "action INS, PLT"
    assert loaded.routing.describe("email") == "DNC leads only"


# --- decisions ---------------------------------------------------------------------------------------------

def test_a_rule_routes_by_country_offer_and_action_and_says_why_not() -> None:
    rules = routing("salesforce:emea country=DE,FR; webhook:partners offer=fabrikam.router; "
                    "hubspot action=PLT country!=CN")
    takes = rules.takes(lead(country="USA"))
    assert takes["email"] == "" and takes["webhook:ops"] == ""
    assert takes["salesforce:emea"] == ("Not sent: the rule for salesforce:emea takes country DE, FR; this lead's "
                                        "country is 'USA' (US).")
    assert takes["webhook:partners"] == ("Not sent: the rule for webhook:partners takes offer fabrikam.router; this "
                                         "lead's offer is 'contoso.analytics'.")
    assert takes["hubspot"] == "Not sent: the rule for hubspot takes action PLT; this lead's action is INS."
    assert rules.skip_reason(lead(country="Germany"), "salesforce:emea") == ""
    assert rules.skip_reason(lead(offer="fabrikam.router"), "webhook:partners") == ""
    assert rules.skip_reason(lead(action="PLT", country="CN"), "hubspot") == \
        "Not sent: the rule for hubspot leaves out country CN; this lead's country is CN."
    assert rules.skip_reason(lead(action="PLT", country=""), "hubspot") == ""  # no country: not CN
    assert routing("salesforce:emea country=DE").skip_reason(lead(country=""), "salesforce:emea") == \
        "Not sent: the rule for salesforce:emea takes country DE; this lead's country is not given."


def test_an_offer_matches_by_id_by_publisher_and_id_or_by_title() -> None:
    for written in ("contoso.analytics", "analytics", "Contoso Analytics"):
        assert routing(f"hubspot offer={written}").skip_reason(lead(), "hubspot") == "", written


def test_do_not_contact_leads_go_to_notifications_only_unless_a_rule_says_so() -> None:
    rules = Routing(("email", "teams", "slack", "webhook", "dynamics", "salesforce:emea", "marketo", "hubspot"))
    takes = rules.takes(lead(action="DNC"))
    assert [name for name, why in takes.items() if not why] == ["email", "teams", "slack"]
    assert takes["hubspot"] == ("Not sent: do-not-contact (DNC) leads go to notifications only (e-mail, Teams, "
                                "Slack), not to hubspot. To send them there too, add dnc=include to its rule in "
                                "LEADS_ROUTES (hubspot dnc=include).")
    assert "not to webhook." in takes["webhook"]
    ruled = routing("hubspot dnc=include; webhook:ops action=DNC,INS; email dnc=exclude")
    assert ruled.skip_reason(lead(action="DNC"), "hubspot") == ""
    assert ruled.skip_reason(lead(action="DNC"), "webhook:ops") == ""
    assert ruled.skip_reason(lead(action="DNC"), "email") == \
        "Not sent: the rule for email leaves out do-not-contact (DNC) leads; this lead is one."


def test_test_leads_as_today_and_a_rule_can_change_it_per_destination() -> None:
    test_lead = lead(is_test=True)
    assert Routing(DESTINATIONS).skip_reason(test_lead, "salesforce:emea") == policy.TEST_LEAD_SKIP
    assert Routing(DESTINATIONS).skip_reason(test_lead, "webhook:ops") == ""
    assert Routing(DESTINATIONS, forward_test_leads=True).skip_reason(test_lead, "hubspot") == ""
    rules = routing("hubspot test=include; email test=exclude; webhook:ops test=only; salesforce:emea edu=exclude")
    assert rules.skip_reason(test_lead, "hubspot") == ""
    assert rules.skip_reason(test_lead, "email") == \
        "Not sent: the rule for email leaves out Partner Center test leads (MSFT_TEST); this lead is one."
    assert rules.skip_reason(lead(), "webhook:ops") == \
        "Not sent: the rule for webhook:ops takes Partner Center test leads (MSFT_TEST) only; this lead is not one."
    assert rules.skip_reason(lead(is_edu=True), "salesforce:emea") == \
        "Not sent: the rule for salesforce:emea leaves out .edu leads; this lead is one."


# --- policy: intake, reconcile, replay apply the same rules --------------------------------------------------

def stored(the_lead: Lead, **deliveries: DeliveryState) -> StoredLead:
    return StoredLead("20261130T120000000Z-00000000", NOW, the_lead, deliveries)


def test_a_dnc_lead_is_skipped_at_crms_on_intake_on_reconcile_and_on_replay() -> None:
    rules = Routing(("email", "hubspot"))
    assert {n: s.state for n, s in policy.initial_deliveries(lead(action="DNC"), rules).items()} == \
        {"email": PENDING, "hubspot": SKIPPED}
    # Stored before this change (keys are type names, hubspot still waiting): the current rules decide.
    before = stored(lead(action="DNC"), email=DeliveryState(state=DELIVERED), hubspot=DeliveryState(state=RETRYING))
    assert policy.reconcile(before, rules, NOW).deliveries["hubspot"].state == SKIPPED
    failed = stored(lead(action="DNC"), email=DeliveryState(state=DELIVERED), hubspot=DeliveryState(state="failed"))
    replayed = policy.replay(failed, NOW, rules)
    hubspot = replayed.deliveries["hubspot"]
    assert hubspot.state == SKIPPED and "do-not-contact" in hubspot.last_error
    assert replayed.deliveries["email"].state == DELIVERED


def test_an_old_style_lead_keeps_its_type_named_destinations() -> None:
    old = stored(lead(), email=DeliveryState(state=DELIVERED), webhook=DeliveryState(state=BLOCKED))
    assert policy.reconcile(old, Routing(("email", "webhook")), NOW) == old
    moved = policy.reconcile(old, Routing(("email", "webhook:partners")), NOW)
    assert moved.deliveries["webhook"].state == PARKED  # the plain webhook was removed from the list: it waits
    assert moved.deliveries["webhook:partners"] == DeliveryState()


def test_while_a_rule_is_unreadable_its_destination_waits_blocked_then_the_fixed_rule_decides() -> None:
    broken = settings(LEADS_DESTINATIONS="email,hubspot", LEADS_ROUTES="hubspot country=Germany dnc=include")
    states = policy.initial_deliveries(lead(action="DNC"), broken.routing)
    assert states["hubspot"].state == PENDING  # not skipped by a default: delivery finds it blocked
    waiting = stored(lead(action="DNC", country="US"), email=DeliveryState(state=DELIVERED),
                     hubspot=DeliveryState(state=BLOCKED, attempts=1))
    fixed = settings(LEADS_DESTINATIONS="email,hubspot", LEADS_ROUTES="hubspot country=DE dnc=include")
    assert policy.reconcile(waiting, fixed.routing, NOW).deliveries["hubspot"].last_error == \
        "Not sent: the rule for hubspot takes country DE; this lead's country is US."
