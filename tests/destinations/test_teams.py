"""Teams destination against a fake Teams workflow endpoint (tests/support/chat_fakes.py names the documents
each canned answer copies)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from leads.core.destination import Delivered
from leads.core.errors import ConfigurationError, TransientDestinationError
from leads.core.model import Customer
from leads.destinations import build_destination
from leads.destinations.teams import Teams, card_text
from tests.destinations.sample import LEAD_ID, settings, stored_lead
from tests.support.chat_fakes import TEAMS_PATH, TEAMS_SIG, FakeTeamsWorkflow, card_facts
from tests.support.fake_http import FakeServer, Reply

PERSONAL = ("Lovelace", "ada@contoso.example", "16175555555", "CTO", "Please call me")


@pytest.fixture
def workflow() -> Iterator[FakeTeamsWorkflow]:
    with FakeServer() as server:
        yield FakeTeamsWorkflow(server)


def teams_at(url: str, **env: str) -> Teams:
    destination = build_destination("teams", settings(LEADS_TEAMS_WEBHOOK_URL=url, **env))
    assert isinstance(destination, Teams)
    return destination


def teams(workflow: FakeTeamsWorkflow, **env: str) -> Teams:
    return teams_at(workflow.url, **env)


def test_posts_an_adaptive_card_with_the_emails_content_and_no_personal_data(workflow: FakeTeamsWorkflow) -> None:
    destination = teams(workflow, LEADS_CONSOLE_URL="https://leads.contoso.example/api/console")
    assert (destination.name, destination.is_crm) == ("teams", False)
    assert destination.deliver(stored_lead()) == Delivered("08580000000000000001")  # the run id
    [message] = workflow.posted
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    facts = card_facts(message)
    assert facts["Offer"] == "Contoso Analytics"
    assert facts["Action"] == "INS — Install: the customer acquired the offer on Azure Marketplace or AppSource"
    assert (facts["Company"], facts["Country"]) == ("Contoso", "US")
    assert (facts["Test lead"], facts[".edu lead"]) == ("no", "no")
    assert facts["Lead id"] == LEAD_ID
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the lead in the console",
                                "url": f"https://leads.contoso.example/api/console#/leads/{LEAD_ID}"}]
    text = json.dumps(message)
    assert not [value for value in PERSONAL if value in text]
    notes = [MarkdownIt("commonmark").renderInline(block["text"]) for block in card["body"] if block.get("isSubtle")]
    assert any("This message does not include" in note and "LEADS_EMAIL_INCLUDE_PII=true" in note for note in notes)


def test_test_and_edu_flags_are_in_the_title_and_facts(workflow: FakeTeamsWorkflow) -> None:
    teams(workflow).deliver(stored_lead(Customer(), is_edu=True, is_test=True))
    [message] = workflow.posted
    title = message["attachments"][0]["content"]["body"][0]["text"]
    assert title == "New Microsoft commercial marketplace lead \\[TEST\\] \\[.edu\\]"
    assert (card_facts(message)["Test lead"], card_facts(message)[".edu lead"]) == ("yes \\(MSFT\\_TEST\\)", "yes")
    assert "This is a test lead" in json.dumps(message)


def test_personal_data_only_with_the_emails_opt_in(workflow: FakeTeamsWorkflow) -> None:
    teams(workflow, LEADS_EMAIL_INCLUDE_PII="true").deliver(stored_lead())
    text = json.dumps(workflow.posted[0])
    assert all(value in text for value in PERSONAL)
    assert card_facts(workflow.posted[0])["E-mail"] == "ada@contoso.example"


def test_lead_values_cannot_make_markdown(workflow: FakeTeamsWorkflow) -> None:
    hostile = "**Evil** [click](https://evil.example) <b>x</b> {{DATE(2017-02-14T06:08:39Z, SHORT)}} &amp;"
    teams(workflow).deliver(stored_lead(Customer(company=hostile)))
    value = card_facts(workflow.posted[0])["Company"]
    rendered = MarkdownIt("commonmark").renderInline(value)
    assert html.unescape(rendered) == hostile  # shown as typed: no emphasis, link, HTML or entity


@hypothesis_settings(max_examples=300)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60))
def test_any_one_line_value_renders_as_itself(value: str) -> None:
    value = " ".join(value.split())
    assert html.unescape(MarkdownIt("commonmark").renderInline(card_text(value))) == value


@pytest.mark.parametrize(("state", "words"), [
    ("disabled", ["turned off or was deleted", "WorkflowTriggerIsNotEnabled", "Turn on"]),
    ("gone", ["not found", "WorkflowNotFound", "LEADS_TEAMS_WEBHOOK_URL"]),
    ("schema", ["TriggerInputSchemaMismatch", "Schema Validation off"]),
])
def test_each_workflow_refusal_names_its_fix(workflow: FakeTeamsWorkflow, state: str, words: list[str]) -> None:
    workflow.state = state
    with pytest.raises(ConfigurationError) as raised:
        teams(workflow).deliver(stored_lead())
    assert all(word in raised.value.explanation for word in words), raised.value.explanation
    assert TEAMS_SIG not in raised.value.explanation and TEAMS_PATH not in raised.value.explanation


def test_a_url_without_its_key_is_refused_with_the_fix(workflow: FakeTeamsWorkflow) -> None:
    with pytest.raises(ConfigurationError) as raised:
        teams_at(workflow.url.split("&sig=")[0]).deliver(stored_lead())
    assert "DirectApiAuthorizationRequired" in raised.value.explanation
    assert "Who can trigger the flow" in raised.value.explanation


@pytest.mark.parametrize(("reply", "retry_after"), [
    (Reply(429, "", headers={"Retry-After": "17"}), 17.0),  # throttled (Logic Apps limits: 429 + Retry-After)
    (Reply(502, ""), None),
    (Reply(408, ""), None),
])
def test_throttling_and_server_errors_are_retried(reply: Reply, retry_after: float | None) -> None:
    with FakeServer() as server:
        server.on("POST", TEAMS_PATH, reply)
        with pytest.raises(TransientDestinationError) as raised:
            teams_at(f"{server.url}{TEAMS_PATH}?sig=x").deliver(stored_lead())
    assert raised.value.retry_after == retry_after


def test_check_sends_nothing_and_an_unset_url_names_the_setting(workflow: FakeTeamsWorkflow) -> None:
    checks = {c.name: c for c in teams(workflow).check()}
    assert checks["settings"].ok and checks["url"].ok and checks["workflow"].ok
    assert workflow.server.requests == []
    [unset] = build_destination("teams", settings()).check()
    assert not unset.ok and "LEADS_TEAMS_WEBHOOK_URL is not set" in unset.message
