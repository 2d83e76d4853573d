"""Slack destination against a fake incoming webhook (tests/support/chat_fakes.py names the documents each
canned answer copies)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads.core.destination import Delivered
from leads.core.errors import ConfigurationError, LeadRejectedError, TransientDestinationError
from leads.core.model import Customer
from leads.destinations import build_destination
from leads.destinations.slack import Slack, mrkdwn_text
from tests.destinations.sample import LEAD_ID, settings, stored_lead
from tests.support.chat_fakes import SLACK_PATH, FakeSlack
from tests.support.fake_http import FakeServer

PERSONAL = ("Lovelace", "ada@contoso.example", "16175555555", "CTO", "Please call me")


@pytest.fixture
def webhook() -> Iterator[FakeSlack]:
    with FakeServer() as server:
        yield FakeSlack(server)


def slack(webhook: FakeSlack, **env: str) -> Slack:
    destination = build_destination("slack", settings(LEADS_SLACK_WEBHOOK_URL=webhook.url, **env))
    assert isinstance(destination, Slack)
    return destination


def fields(message: dict[str, Any]) -> dict[str, str]:
    """Label -> value of each `*Label*\\nvalue` section field."""
    found = {}
    for block in message["blocks"]:
        for field in block.get("fields", []):
            label, _, value = field["text"].partition("\n")
            found[label.strip("*")] = value
    return found


def test_posts_blocks_with_a_text_fallback_and_the_emails_content(webhook: FakeSlack) -> None:
    destination = slack(webhook, LEADS_CONSOLE_URL="https://leads.contoso.example/api/console")
    assert (destination.name, destination.is_crm) == ("slack", False)
    assert destination.deliver(stored_lead()) == Delivered("")
    [message] = webhook.posted
    assert message["text"] == "New marketplace lead: Contoso Analytics — Install — Contoso"
    assert message["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "New Microsoft commercial marketplace lead", "emoji": False}}
    shown = fields(message)
    assert shown["Offer"] == "Contoso Analytics"
    assert shown["Action"] == "INS — Install: the customer acquired the offer on Azure Marketplace or AppSource"
    assert (shown["Company"], shown["Country"], shown["Test lead"], shown[".edu lead"]) == ("Contoso", "US", "no", "no")
    assert shown["Lead id"] == LEAD_ID
    assert f"<https://leads.contoso.example/api/console#/leads/{LEAD_ID}|Open the lead in the console>" in json.dumps(
        message)
    text = json.dumps(message)
    assert not [value for value in PERSONAL if value in text]
    assert "LEADS_EMAIL_INCLUDE_PII=true" in text
    assert all(len(block.get("fields", [])) <= 10 for block in message["blocks"])  # Block Kit's limit


def test_flags_and_personal_data_with_the_emails_opt_in(webhook: FakeSlack) -> None:
    slack(webhook, LEADS_EMAIL_INCLUDE_PII="true").deliver(stored_lead(is_test=True, is_edu=True))
    [message] = webhook.posted
    assert message["blocks"][0]["text"]["text"].endswith("[TEST] [.edu]")
    assert (fields(message)["Test lead"], fields(message)["E-mail"]) == ("yes (MSFT_TEST)", "ada@contoso.example")
    assert all(value in json.dumps(message) for value in PERSONAL)


def test_lead_values_cannot_make_links_or_mentions(webhook: FakeSlack) -> None:
    hostile = "<!channel> <https://evil.example|Click> <@U024BE7LH> & co"
    slack(webhook).deliver(stored_lead(Customer(company=hostile)))
    [message] = webhook.posted
    assert fields(message)["Company"] == ("&lt;!channel&gt; &lt;https://evil.example|Click&gt; &lt;@U024BE7LH&gt; "
                                          "&amp; co")
    assert "<!channel>" not in json.dumps(message)
    parts = [part for block in message["blocks"]
             for part in [block.get("text"), *block.get("fields", []), *block.get("elements", [])] if part]
    mrkdwn = [part for part in parts if part["type"] == "mrkdwn"]
    assert mrkdwn and all(part["verbatim"] is True for part in mrkdwn)  # no auto-linked URLs or channel names


@hypothesis_settings(max_examples=300)
@given(st.text(max_size=80))
def test_escaped_text_has_no_control_sequence_and_unescapes_to_itself(value: str) -> None:
    escaped = mrkdwn_text(value)
    assert "<" not in escaped and ">" not in escaped
    assert re.sub(r"&(lt|gt|amp);", lambda m: {"lt": "<", "gt": ">", "amp": "&"}[m[1]], escaped) == value


@pytest.mark.parametrize(("state", "words"), [
    ("no_service", ["does not know this webhook", "no_service", "LEADS_SLACK_WEBHOOK_URL"]),
    ("invalid_token", ["no longer accepts", "invalid_token", "Add New Webhook"]),
    ("action_prohibited", ["restricts", "workspace admin"]),
    ("posting_to_general_channel_denied", ["general channel"]),
    ("channel_not_found", ["cannot find the webhook's channel", "channel_not_found"]),
    ("channel_is_archived", ["archived", "Unarchive"]),
])
def test_each_documented_refusal_names_its_fix(webhook: FakeSlack, state: str, words: list[str]) -> None:
    webhook.state = state
    with pytest.raises(ConfigurationError) as raised:
        slack(webhook).deliver(stored_lead())
    assert all(word in raised.value.explanation for word in words), raised.value.explanation
    assert SLACK_PATH not in raised.value.explanation and "XXXXXXXX" not in raised.value.explanation


def test_an_invalid_payload_rejects_this_lead_only(webhook: FakeSlack) -> None:
    webhook.state = "invalid_payload"
    with pytest.raises(LeadRejectedError) as raised:
        slack(webhook).deliver(stored_lead())
    assert "invalid_payload" in raised.value.explanation and f"replay {LEAD_ID}" in raised.value.explanation


@pytest.mark.parametrize(("state", "retry_after"), [("rate_limited", 30.0), ("rollup_error", None)])
def test_rate_limits_and_rollup_errors_are_retried(webhook: FakeSlack, state: str, retry_after: float | None) -> None:
    webhook.state = state
    with pytest.raises(TransientDestinationError) as raised:
        slack(webhook).deliver(stored_lead())
    assert raised.value.retry_after == retry_after


def test_check_probes_with_an_empty_message_that_posts_nothing(webhook: FakeSlack) -> None:
    checks = {c.name: c for c in slack(webhook).check()}
    assert checks["webhook"].ok and "no_text" in checks["webhook"].message
    assert webhook.posted == [] and len(webhook.server.requests) == 1
    webhook.state = "no_service"
    failed = {c.name: c for c in slack(webhook).check()}["webhook"]
    assert not failed.ok and "no_service" in failed.message and SLACK_PATH not in failed.message
