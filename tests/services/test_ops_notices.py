"""Operational notices end to end: the real delivery pipeline on Azurite, notices through a real SMTP server.

Each notice is de-duplicated by an ETag-conditional write in the leads table (partition `notices`), so two
workers (two instances on Flex) send one; events inside the interval are counted into the next notice."""

from __future__ import annotations

import itertools
import json
import re
import threading
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from leads.core.breaker import CircuitBreakers
from leads.core.errors import ConfigurationError, LeadRejectedError
from leads.core.messages import DeliveryMessage
from leads.core.model import BLOCKED, FAILED
from leads.core.notices import ConditionState
from leads.runtime import build_notices
from leads.services.delivery import DeliveryService
from leads.services.ops_notices import OpsNotices
from leads.services.sweeper import Sweeper
from leads.storage.notice_table import NOTICES_PARTITION, NoticeTable
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.azurite
OPS = "ops@contoso.example"
CONSOLE = "https://leads.contoso.example/api/console"
LEAD = {"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": "ana.lopez@fabrikam.example",
                        "Company": "Fabrikam Widgets", "Country": "ES", "Phone": "+34 600 123 456"},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Lead Router"}
PERSONAL = ("Ana", "Lopez", "fabrikam", "Fabrikam Widgets", "600 123 456")


_SEQUENCE = itertools.count()


def body() -> bytes:
    """A new lead each time (a repeat of the same payload would be a duplicate of the first)."""
    details = {**LEAD["UserDetails"], "Title": f"Buyer {next(_SEQUENCE)}"}  # type: ignore[dict-item]
    return json.dumps({**LEAD, "UserDetails": details}).encode()


def mail_env(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {"LEADS_EMAIL_TO": "sales@contoso.example", "LEADS_OPS_EMAIL_TO": OPS,
            "LEADS_EMAIL_FROM": "leads@contoso.example", "LEADS_SMTP_HOST": smtp.host,
            "LEADS_SMTP_PORT": str(smtp.port), "LEADS_SMTP_SECURITY": "none", "LEADS_HTTP_TIMEOUT": "5",
            "LEADS_CONSOLE_URL": CONSOLE, **extra}


def notices_of(pipeline: Pipeline) -> OpsNotices:
    """The app's own notices (runtime.build_notices: e-mail sender, table store) on the pipeline's clock."""
    notices = build_notices(pipeline.runtime)
    notices.clock = pipeline.clock
    return notices


def worker(pipeline: Pipeline, notices: OpsNotices | None = None) -> DeliveryService:
    """Another delivery worker (another instance): its own breakers and notices, the same storage."""
    return DeliveryService(pipeline.table, pipeline.runtime.queue, pipeline.destinations, pipeline.settings,
                           CircuitBreakers(), clock=pipeline.clock, notices=notices or notices_of(pipeline))


def ops_mail(smtp: SmtpServer) -> list[EmailMessage]:
    return [m for m in smtp.messages if m["X-Leads-Notice"] is not None]


def text_of(message: EmailMessage) -> str:
    return str(message["Subject"]) + "\n" + str(message.get_content())


def assert_no_personal_data(message: EmailMessage) -> None:
    text = text_of(message)
    for value in PERSONAL:
        assert not re.search(rf"\b{re.escape(value)}\b", text, re.IGNORECASE), f"{value!r} in the notice"


def ingest(pipeline: Pipeline) -> str:
    answer = pipeline.ingest.receive("POST", body())
    assert answer.status == 202
    pipeline.queued()  # the message is handled by the worker the test names
    return str(answer.body["id"])


@pytest.fixture
def make(azurite: Any, tmp_path: Path, smtp_server: SmtpServer) -> Any:
    def build(destinations: dict[str, RecordingDestination], **env: str) -> Pipeline:
        return build_pipeline(azurite.connection_string, str(tmp_path / "spool"), destinations,
                              env=mail_env(smtp_server, **env))
    return build


def test_a_blocked_destination_is_one_notice_from_two_workers_then_a_recovery(make: Any,
                                                                            smtp_server: SmtpServer) -> None:
    refusal = ConfigurationError("HubSpot refused the token (401): set LEADS_HUBSPOT_TOKEN to a valid private "
                                 "app token.")
    hubspot = RecordingDestination("hubspot", True, script=[refusal, refusal])
    pipeline = make({"hubspot": hubspot})
    first, second = worker(pipeline), worker(pipeline)
    leads = [ingest(pipeline) for _ in range(2)]
    gate = threading.Barrier(2)

    def run(service: DeliveryService, lead_id: str) -> None:
        gate.wait(10)
        service.handle(DeliveryMessage(lead_id))

    threads = [threading.Thread(target=run, args=pair) for pair in ((first, leads[0]), (second, leads[1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for lead_id in leads:
        assert pipeline.table.load(lead_id).stored.deliveries["hubspot"].state == BLOCKED
    [notice] = ops_mail(smtp_server)  # sent synchronously by the winning worker: both have returned
    assert notice["Subject"] == "Marketplace leads: hubspot is blocked"
    assert smtp_server.envelopes[-1].rcpt_tos == (OPS,)
    text = notice.get_content()
    assert "LEADS_HUBSPOT_TOKEN" in text and "circuit breaker" in text and "python -m leads doctor" in text
    assert f"{CONSOLE}#/leads/" in text
    assert_no_personal_data(notice)
    [(state, _)] = NoticeTable(pipeline.table.leads).all()
    assert (state.condition, state.total, state.unsent) == ("blocked:hubspot", 2, 1)  # the second one, counted

    # Fixed (the script is spent: HubSpot accepts): once the breakers' pause is over, the next delivery
    # clears it, with one recovery notice.
    pipeline.clock.offset += 301
    first.handle(DeliveryMessage(ingest(pipeline)))
    notices = ops_mail(smtp_server)
    assert [m["Subject"] for m in notices[1:]] == ["Marketplace leads: hubspot works again"]
    assert "2 leads affected" in notices[1].get_content()
    second.handle(DeliveryMessage(ingest(pipeline)))  # another worker, another delivery: nothing more to say
    assert len(ops_mail(smtp_server)) == 2


def test_two_instances_deciding_on_the_same_state_at_once_send_one_notice(make: Any,
                                                                        smtp_server: SmtpServer) -> None:
    """Both read the condition as clear before either writes: the ETag lets one write win; the other
    re-reads, sees it open and only counts."""
    pipeline = make({"email": RecordingDestination("email")})
    both_read = threading.Barrier(2)

    class SlowLoads(NoticeTable):
        def load(self, condition: str) -> tuple[ConditionState, str] | None:
            loaded = super().load(condition)
            if loaded is None:  # the first read of each instance
                both_read.wait(10)
            return loaded

    instances = [notices_of(pipeline) for _ in range(2)]
    for notices in instances:
        notices.store = SlowLoads(pipeline.table.leads)
    threads = [threading.Thread(target=n.failed, args=("webhook", f"lead-{i}", "The webhook answered 400."))
               for i, n in enumerate(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: 1 lead failed for good at webhook"
    [(state, _)] = NoticeTable(pipeline.table.leads).all()
    assert (state.total, state.unsent) == (2, 1)


def test_leads_failed_for_good_one_notice_then_a_summary_without_personal_data(make: Any,
                                                                              smtp_server: SmtpServer) -> None:
    # A vendor's refusal that quotes the lead (as HubSpot's validation errors do): never in the notice.
    rejection = LeadRejectedError("HubSpot rejected the contact (400): Property values were not valid: "
                                  "email ana.lopez@fabrikam.example, company Fabrikam Widgets.")
    hubspot = RecordingDestination("hubspot", True, script=[rejection, rejection, rejection])
    pipeline = make({"hubspot": hubspot})
    service = worker(pipeline)
    for _ in range(3):
        lead_id = ingest(pipeline)
        service.handle(DeliveryMessage(lead_id))
        assert pipeline.table.load(lead_id).stored.deliveries["hubspot"].state == FAILED
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: 1 lead failed for good at hubspot"
    assert "python -m leads replay --failed" in notice.get_content()
    assert "[lead field]" in notice.get_content()
    assert_no_personal_data(notice)

    # The two others were counted; an interval later the sweeper's review sends them as one summary.
    assert service.notices is not None
    pipeline.clock.offset += pipeline.settings.notice_interval_seconds + 1
    sweeper = Sweeper(pipeline.table, pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                      clock=pipeline.clock, review=service.notices.review)
    sweeper.sweep()
    summary = ops_mail(smtp_server)[1]
    assert summary["Subject"] == "Marketplace leads: 2 more leads failed for good at hubspot"
    assert_no_personal_data(summary)
    sweeper.sweep()  # nothing new: nothing sent
    assert len(ops_mail(smtp_server)) == 2


def test_silence_is_noticed_after_the_set_days_and_clears_with_the_next_lead(make: Any,
                                                                           smtp_server: SmtpServer) -> None:
    pipeline = make({"email": RecordingDestination("email")}, LEADS_SILENCE_ALERT_DAYS="3")
    notices = notices_of(pipeline)
    notices.review()  # no lead yet: the silence is counted from the first one
    ingest(pipeline)
    notices.clock = lambda: pipeline.clock() + timedelta(days=2, hours=23)
    notices._next_review = None  # a new process: reviewed at its first sweep
    notices.review()
    assert ops_mail(smtp_server) == []
    notices.clock = lambda: pipeline.clock() + timedelta(days=3, hours=2)
    notices._next_review = None
    notices.review()
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: no lead for 3 days"
    assert "Validate" in notice.get_content() and "LEADS_SILENCE_ALERT_DAYS=0" in notice.get_content()
    notices._next_review = None
    notices.review()  # still silent: once per condition
    assert len(ops_mail(smtp_server)) == 1

    pipeline.clock.offset = timedelta(days=3, hours=3).total_seconds()
    ingest(pipeline)
    notices.clock = pipeline.clock
    notices._next_review = None
    notices.review()
    assert [m["Subject"] for m in ops_mail(smtp_server)][1:] == ["Marketplace leads: leads arrive again"]


def test_silence_notice_is_off_at_zero(make: Any, smtp_server: SmtpServer) -> None:
    pipeline = make({"email": RecordingDestination("email")}, LEADS_SILENCE_ALERT_DAYS="0")
    notices = notices_of(pipeline)
    ingest(pipeline)
    notices.clock = lambda: pipeline.clock() + timedelta(days=400)
    notices.review()
    assert ops_mail(smtp_server) == []
    assert NoticeTable(pipeline.table.leads).all() == []


def test_a_notice_the_smtp_server_refuses_is_sent_by_the_next_review(make: Any, smtp_server: SmtpServer) -> None:
    pipeline = make({"email": RecordingDestination("email")})
    notices = notices_of(pipeline)
    smtp_server.reject_with = "451 4.3.0 Try again later"
    notices.failed("webhook", "lead-1", "The webhook answered 400.")
    assert ops_mail(smtp_server) == []
    smtp_server.reject_with = None
    notices.review()
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: 1 lead failed for good at webhook"


def test_an_idle_hour_of_sweeps_costs_two_storage_calls_for_the_notices(make: Any,
                                                                        figure: Callable[[str], None]) -> None:
    """Measured: 60 sweeps one simulated minute apart, with and without the notices' review."""
    pipeline = make({"email": RecordingDestination("email")})
    lead_id = ingest(pipeline)
    pipeline.delivery.handle(DeliveryMessage(lead_id))  # idle: nothing due (else its wake-ups slow down, as stuck)
    calls = {}
    for review in (False, True):
        notices = notices_of(pipeline)
        sweeper = Sweeper(pipeline.table, pipeline.runtime.queue, pipeline.ingest, pipeline.runtime.spool,
                          clock=pipeline.clock, review=notices.review if review else None)
        notices.clock = pipeline.clock
        start = pipeline.clock.offset
        pipeline.transport.reset()
        for minute in range(60):
            pipeline.clock.offset = start + 3600 * (review + 1) + 60 * minute
            sweeper.sweep()
        calls[review] = pipeline.transport.total
    added = calls[True] - calls[False]
    figure(f"storage calls per idle hour of sweeps: {calls[False]} without notices, {calls[True]} with "
           f"(+{added}: the notices' state query and the newest-lead query, once an hour)")
    assert added == 2


def test_notice_state_rows_stay_in_their_own_partition(make: Any, smtp_server: SmtpServer) -> None:
    pipeline = make({"email": RecordingDestination("email")})
    notices_of(pipeline).blocked("webhook", "lead-1", "LEADS_WEBHOOK_URL must start with https://.")
    rows = list(pipeline.table.leads.query_entities("PartitionKey eq @pk", parameters={"pk": NOTICES_PARTITION}))
    assert [row["RowKey"] for row in rows] == ["blocked:webhook"]
    assert pipeline.table.recent() == []  # not a lead


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_the_app_as_served_sends_one_blocked_notice_and_the_sweeper_notices_silence(
        local_host_factory: Any, smtp_server: SmtpServer, azurite: Any, tmp_path: Path) -> None:
    """function_app through the local host: the runtime wires the notices into delivery and the sweeper."""
    from datetime import UTC, datetime

    from tests.end_to_end.test_end_to_end import app_env, lead_table
    from tests.support.http_json import post
    from tests.support.seeding import seed, varied_lead

    # HubSpot without a token is blocked by its settings (each lead shows the sentence naming the setting).
    env = {**app_env(smtp_server, tmp_path, LEADS_DESTINATIONS="email,hubspot"), **mail_env(smtp_server)}
    host = local_host_factory(env)
    for _ in range(2):
        status, answer = post(host.url("leads"), body())
        assert status == 202, answer
    wait_until(lambda: len(ops_mail(smtp_server)) >= 1 and len(smtp_server.messages) >= 3, what="the mail")
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: hubspot is blocked"
    assert "LEADS_HUBSPOT_TOKEN" in notice.get_content()
    assert_no_personal_data(notice)

    # A table whose newest lead is 8 days old: the sweeper's first run (its review) says so.
    quiet = {**env, "LEADS_TABLE": env["LEADS_TABLE"] + "q", "LEADS_DESTINATIONS": "email"}
    table = lead_table(quiet, azurite)
    table.create_tables()
    seed(table, [varied_lead(0, datetime.now(UTC) - timedelta(days=8))])
    host = local_host_factory(quiet)
    request = urllib.request.Request(f"{host.base_url}/admin/functions/sweep_outbox", data=b'{"input": ""}',
                                     headers=host.admin_headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:  # the host's admin API: run the timer now
        assert answer.status == 202
    wait_until(lambda: any(m["Subject"] == "Marketplace leads: no lead for 7 days" for m in ops_mail(smtp_server)),
               what="the silence notice")


def test_a_crash_loop_that_ends_in_failure_is_noticed(make: Any, smtp_server: SmtpServer) -> None:
    """policy.settle_crashes fails a destination whose workers kept dying: that lead failed for good too."""
    from leads.core.model import SENDING, iso

    pipeline = make({"hubspot": RecordingDestination("hubspot", True)})
    lead_id = ingest(pipeline)
    current = pipeline.table.load(lead_id)
    assert current is not None
    stored = current.stored
    dying = stored.deliveries["hubspot"].with_(state=SENDING, attempts=3, expired_claims=3,
                                               lease_until=iso(pipeline.clock() - timedelta(seconds=5)))
    crashed = type(stored)(stored.id, stored.received_at, stored.lead, {"hubspot": dying})
    pipeline.table.save(crashed, current.etag, outbox_due=pipeline.clock(), previous=stored)
    worker(pipeline).handle(DeliveryMessage(lead_id))
    assert pipeline.destinations["hubspot"].received == []  # failed, not sent again
    [notice] = ops_mail(smtp_server)
    assert notice["Subject"] == "Marketplace leads: 1 lead failed for good at hubspot"
    assert "Delivery kept crashing" in notice.get_content()


def test_ops_recipients_fall_back_to_the_lead_recipients_and_bad_values_to_defaults() -> None:
    from leads.core.settings import load_settings

    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "LEADS_EMAIL_TO": "sales@contoso.example"}
    assert load_settings(base).ops_email_to == ("sales@contoso.example",)
    assert load_settings({**base, "LEADS_OPS_EMAIL_TO": "a@contoso.example; b@contoso.example"}).ops_email_to == (
        "a@contoso.example", "b@contoso.example")
    broken = load_settings({**base, "LEADS_SILENCE_ALERT_DAYS": "a week", "LEADS_NOTICE_INTERVAL_SECONDS": "0"})
    assert (broken.silence_alert_days, broken.notice_interval_seconds) == (7, 3600)
    assert set(broken.warnings) == {"LEADS_SILENCE_ALERT_DAYS", "LEADS_NOTICE_INTERVAL_SECONDS"}


def test_a_flapping_condition_is_not_announced_again_within_the_interval() -> None:
    """The decisions alone (plain functions): open, clear, reopen at once, then an interval later."""
    from datetime import UTC, datetime

    from leads.core.notices import Event, on_clear, on_event, sent

    hour, start = timedelta(hours=1), datetime(2026, 11, 30, 9, tzinfo=UTC)
    event = Event("blocked:hubspot", "HubSpot refused the token (401).", "lead-1")
    state, due = on_event(None, event, start, hour)
    assert due and not state.announced
    state = sent(state, start)
    state, recovery_due = on_clear(state, start + timedelta(minutes=5))
    assert recovery_due and not state.is_open
    state, due = on_event(state, event, start + timedelta(minutes=10), hour)
    assert state.is_open and not due  # the recovery notice was 5 minutes ago
    state, due = on_event(state, event, start + timedelta(minutes=66), hour)
    assert due and (state.unsent, state.total) == (2, 2)


def test_the_notice_decisions_import_no_azure_package() -> None:
    """The core stays plain Python: the decisions and texts run without the Azure SDKs."""
    import subprocess
    import sys

    code = ("import sys, leads.services.ops_notices; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'msal')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_notices_also_reach_the_teams_and_slack_channels_lead_ops_chat_names(make: Any,
                                                                              smtp_server: SmtpServer) -> None:
    from tests.support.chat_fakes import FakeSlack, FakeTeamsWorkflow
    from tests.support.fake_http import FakeServer

    with FakeServer() as slack_server, FakeServer() as teams_server:
        slack, teams = FakeSlack(slack_server), FakeTeamsWorkflow(teams_server)
        refusal = ConfigurationError("HubSpot refused the token (401): set LEADS_HUBSPOT_TOKEN <and> fix it.")
        pipeline = make({"hubspot": RecordingDestination("hubspot", True, script=[refusal])},
                        LEADS_DESTINATIONS="hubspot,teams,slack:ops", LEADS_OPS_CHAT="teams, slack:ops",
                        LEADS_TEAMS_WEBHOOK_URL=teams.url, LEADS_SLACK_OPS_WEBHOOK_URL=slack.url)
        worker(pipeline).handle(DeliveryMessage(ingest(pipeline)))

        [mail] = ops_mail(smtp_server)
        [posted] = slack.posted
        assert posted["text"].startswith("*Marketplace leads: hubspot is blocked*\n")
        assert "LEADS_HUBSPOT_TOKEN &lt;and&gt; fix it" in posted["text"]  # Slack's markup escaped
        [card] = [m["attachments"][0]["content"] for m in teams.posted]
        texts = [block["text"] for block in card["body"]]
        assert texts[0] == "Marketplace leads: hubspot is blocked" == mail["Subject"]
        assert any("LEADS\\_HUBSPOT\\_TOKEN" in text for text in texts)  # Markdown escaped
        for value in PERSONAL:
            assert value not in json.dumps(slack.posted) + json.dumps(teams.posted)


def test_lead_ops_chat_naming_anything_but_a_chat_destination_is_a_sentence_and_email_still_goes() -> None:
    from leads.core.settings import load_settings

    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "LEADS_DESTINATIONS":
                              "email,webhook,slack", "LEADS_OPS_CHAT": "slack,webhook,teams"})
    assert settings.ops_chat == ("slack",)
    sentence = settings.warnings["LEADS_OPS_CHAT"]
    assert "LEADS_OPS_CHAT names webhook, teams, not a teams or slack destination" in sentence
