"""Microsoft Teams: each lead posted to a channel as an Adaptive Card, through a Teams workflow ("Post to a
channel when a webhook request is received", the Workflows app's replacement for Office 365 connectors).

The message is what the e-mail says (leads/core/notification.py): offer, action and its meaning, company, country,
test and .edu flags, a link to the lead in the console; personal data only with LEADS_EMAIL_INCLUDE_PII=true.
Lead values are untrusted: TextBlock and FactSet text render a Markdown subset, so every value is escaped.

The URL's `sig=` lets anyone post to the channel: it is a secret, never logged or quoted (only its host is).
A workflow answers 202 as soon as its run starts (Microsoft Learn, "Receive and respond to inbound HTTPS calls",
connectors-native-reqres): a later failure of the run's "post card" step shows in the workflow's run history,
not here.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, DestinationError, TransientDestinationError
from leads.core.model import StoredLead
from leads.core.notification import NotificationContent, notification_content
from leads.core.settings import Settings, TeamsSettings
from leads.core.urls import shown_host
from leads.destinations.chat import ChatWebhook
from leads.destinations.vendor_common import json_body

LABEL = "The Teams workflow"
SETTING = "LEADS_TEAMS_WEBHOOK_URL"
CARD_VERSION = "1.4"  # what Teams renders in channel messages
WORKFLOW_HELP = ("in Teams, open the channel's ... menu > Workflows > \"Post to a channel when a webhook request "
                 "is received\"")

# ASCII punctuation that starts Markdown in a TextBlock (emphasis, links, code, headings, HTML-like text, entity
# references such as &amp;) and the braces of the {{DATE()}}/{{TIME()}} functions; CommonMark lets any of them
# be escaped with a backslash.
_MARKUP = re.compile(r"([\\`*_\[\](){}~#<>|!&])")
_LIST_MARKER = re.compile(r"^(\s*)(?:([-+])|(\d+)(\.))(?=\s|$)", re.MULTILINE)


def create(settings: Settings) -> Teams:
    return Teams(settings.teams, settings.http_timeout, include_pii=settings.email.include_pii,
                 console_url=settings.console_url)


def card_text(value: str) -> str:
    """A lead value shown as itself in a TextBlock or a fact: Markdown characters escaped, and a leading list
    marker (`- `, `1. `) escaped so the value cannot become a list."""
    escaped = _MARKUP.sub(r"\\\1", value)
    return _LIST_MARKER.sub(lambda m: m[1] + (f"\\{m[2]}" if m[2] else f"{m[3]}\\{m[4]}"), escaped)


def _facts(rows: list[tuple[str, str]]) -> dict[str, Any]:
    facts = [{"title": card_text(label), "value": card_text(value)} for label, value in rows]
    return {"type": "FactSet", "facts": facts}


def _card(content: NotificationContent) -> dict[str, Any]:
    flags = "".join(f" [{flag}]" for flag in content.flags)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": card_text(content.title + flags), "weight": "Bolder", "size": "Medium",
         "wrap": True},
        _facts(content.rows),
    ]
    if content.personal_rows:
        body += [{"type": "TextBlock", "text": "Customer", "weight": "Bolder", "wrap": True},
                 _facts(content.personal_rows)]
    if content.description:
        body += [{"type": "TextBlock", "text": "Description", "weight": "Bolder", "wrap": True},
                 {"type": "TextBlock", "text": card_text(content.description), "wrap": True}]
    body += [{"type": "TextBlock", "text": card_text(note), "wrap": True, "isSubtle": True, "size": "Small"}
             for note in content.notes]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if content.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the lead in the console", "url": content.link}]
    return card


def teams_message(stored: StoredLead, include_pii: bool = False, console_url: str = "") -> dict[str, Any]:
    """The body the workflow's trigger receives: a message with one Adaptive Card attachment (the shape the
    "Post to a channel when a webhook request is received" template posts)."""
    content = notification_content(stored, include_pii, console_url)
    return {
        "type": "message",
        "summary": content.summary,  # the channel's notification text
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                         "content": _card(content)}],
    }


class Teams(ChatWebhook):
    name = "teams"
    label = LABEL
    setting = SETTING

    def __init__(self, settings: TeamsSettings, timeout: float, *, include_pii: bool = False,
                 console_url: str = "") -> None:
        super().__init__(settings.url, timeout, f"{SETTING} is not set: {WORKFLOW_HELP}, then copy the workflow's "
                                                f"URL into {SETTING}.", include_pii=include_pii,
                         console_url=console_url)

    def deliver(self, stored: StoredLead) -> Delivered:
        response = self.post(teams_message(stored, self.include_pii, self.console_url))
        if 200 <= response.status_code < 300:
            # The run's id: its history shows whether the card reached the channel.
            return Delivered(response.headers.get("x-ms-workflow-run-id", ""))
        raise self.refusal(response, stored.id)

    def refusal(self, response: requests.Response, lead_id: str = "") -> DestinationError:
        """The sentence and fix for a workflow's refusal. Only the error code is quoted (its message can name
        the workflow)."""
        status = response.status_code
        host = shown_host(self.url)
        code = _error_code(response)
        said = f"HTTP {status}" + (f", {code}" if code else "")
        if 300 <= status < 400:
            return ConfigurationError(f"{LABEL} at {host} answered {said}, a redirect, which is not followed: copy "
                                      f"the workflow's URL into {SETTING} again.")
        if code == "WorkflowTriggerIsNotEnabled":
            return ConfigurationError(
                f"{LABEL} at {host} is turned off or was deleted ({said}): turn it on in Teams (Workflows app > "
                f"the workflow > Turn on); if it was deleted, create it again and copy its new URL into {SETTING}.")
        if code == "TriggerInputSchemaMismatch":
            return ConfigurationError(
                f"{LABEL} at {host} refused the card ({said}): its trigger checks the request against a JSON schema "
                "the Adaptive Card message does not match. Clear the trigger's Request Body JSON Schema (or turn "
                "Schema Validation off) in the workflow.")
        if status in (401, 403):
            return ConfigurationError(
                f"{LABEL} at {host} refused the request ({said}): the URL's key (sig=) is missing or wrong, or the "
                "trigger lets only signed-in users start the workflow. Copy the workflow's full URL into "
                f"{SETTING} again and set the trigger's \"Who can trigger the flow\" to Anyone.")
        if status == 404:
            return ConfigurationError(
                f"{LABEL} at {host} was not found ({said}): the workflow was deleted or the URL is incomplete; "
                f"{WORKFLOW_HELP} and copy its URL into {SETTING}.")
        if status == 408:
            return TransientDestinationError(f"{LABEL} at {host} timed out reading the card ({said}); will retry.")
        return ConfigurationError(
            f"{LABEL} at {host} refused the card ({said}): check {SETTING} and the workflow's run history.")

    def check(self) -> list[Check]:
        checks = self.url_checks()
        if all(c.ok for c in checks):
            # Any request to the URL starts a run: a probe would post a card, or leave a failed run that mails
            # the workflow's owner (and repeated failures can get a flow turned off).
            checks.append(Check(self.name, "workflow", True,
                                "Not contacted (any request starts the workflow and posts to the channel). Use "
                                "Partner Center's Validate button, or replay a lead, to see a card arrive."))
        return checks


def _error_code(response: requests.Response) -> str:
    """The workflow's `{"error": {"code": ...}}`, when it is a plain identifier."""
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,80}", code) else ""
