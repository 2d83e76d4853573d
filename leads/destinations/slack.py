"""Slack: each lead posted to a channel through an incoming webhook, as Block Kit blocks with a text fallback
(the text shows in notifications and in clients that cannot render blocks).

The message is what the e-mail says (leads/core/notification.py), with the same personal-data rule
(LEADS_EMAIL_INCLUDE_PII). Lead values are untrusted: in mrkdwn `&`, `<` and `>` are escaped as Slack's
"Formatting text" page says (so no value can make a link, a mention such as <!channel>, or a channel link),
and the text objects are `verbatim` (Slack does not turn bare URLs or channel names in them into links).

The URL's path is the webhook's secret: never logged or quoted (only its host is).
"""

from __future__ import annotations

import re
from typing import Any

import requests

from leads.core.destination import Check, Delivered
from leads.core.errors import ConfigurationError, DestinationError, LeadRejectedError
from leads.core.model import StoredLead
from leads.core.notification import NotificationContent, notification_content
from leads.core.settings import Settings, SlackSettings
from leads.core.urls import shown_host
from leads.destinations.chat import ChatWebhook
from leads.destinations.vendor_common import check_step, replay_hint

LABEL = "Slack"
SETTING = "LEADS_SLACK_WEBHOOK_URL"
NEW_WEBHOOK = ("create an incoming webhook for the channel (your Slack app > Incoming Webhooks > Add New "
               f"Webhook) and copy its URL into {SETTING}")
FIELD_MAX = 2000  # Block Kit: a section field's text
TEXT_MAX = 3000  # Block Kit: a section's text
FIELDS_PER_SECTION = 10


def create(settings: Settings) -> Slack:
    return Slack(settings.slack, settings.http_timeout, include_pii=settings.email.include_pii,
                 console_url=settings.console_url)


def mrkdwn_text(value: str) -> str:
    """A value shown as itself in mrkdwn: Slack's three control characters escaped."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _fields(rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    fields = [_mrkdwn(_shorten(f"*{mrkdwn_text(label)}*\n{mrkdwn_text(value)}", FIELD_MAX)) for label, value in rows]
    return [{"type": "section", "fields": fields[start:start + FIELDS_PER_SECTION]}
            for start in range(0, len(fields), FIELDS_PER_SECTION)]


def _blocks(content: NotificationContent) -> list[dict[str, Any]]:
    flags = "".join(f" [{flag}]" for flag in content.flags)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": content.title + flags, "emoji": False}},
        *_fields(content.rows),
    ]
    if content.personal_rows:
        blocks += [{"type": "section", "text": _mrkdwn("*Customer*")}, *_fields(content.personal_rows)]
    if content.description:
        blocks.append({"type": "section", "text": _mrkdwn(_shorten(
            "*Description*\n" + mrkdwn_text(content.description), TEXT_MAX))})
    if content.link:
        # A link, not a button: a button would also call the Slack app's interactivity URL, which it has not.
        blocks.append({"type": "section", "text": _mrkdwn(
            f"<{mrkdwn_text(content.link)}|Open the lead in the console> (sign-in needed)")})
    if content.notes:
        blocks.append({"type": "context", "elements": [_mrkdwn(_shorten(mrkdwn_text(note), TEXT_MAX))
                                                       for note in content.notes]})
    return blocks


def slack_message(stored: StoredLead, include_pii: bool = False, console_url: str = "") -> dict[str, Any]:
    content = notification_content(stored, include_pii, console_url)
    return {"text": mrkdwn_text(content.summary), "blocks": _blocks(content), "unfurl_links": False}


class Slack(ChatWebhook):
    name = "slack"
    label = LABEL
    setting = SETTING

    def __init__(self, settings: SlackSettings, timeout: float, *, include_pii: bool = False,
                 console_url: str = "") -> None:
        super().__init__(settings.url, timeout, f"{SETTING} is not set: {NEW_WEBHOOK}.", include_pii=include_pii,
                         console_url=console_url)

    def deliver(self, stored: StoredLead) -> Delivered:
        response = self.post(slack_message(stored, self.include_pii, self.console_url))
        if response.status_code == 200:
            return Delivered("")  # Slack answers `ok`, with no id for the message
        raise self.refusal(response, stored.id)

    def refusal(self, response: requests.Response, lead_id: str = "") -> DestinationError:
        """The sentence and fix for each answer Slack documents for incoming webhooks (429 and 5xx, e.g.
        rollup_error, are retried by `send`)."""
        status = response.status_code
        host = shown_host(self.url)
        code = _error_code(response)
        said = f"HTTP {status}" + (f", {code}" if code else "")
        if 300 <= status < 400:
            return ConfigurationError(f"{LABEL} at {host} answered {said}, a redirect, which is not followed: "
                                      f"copy the webhook's URL into {SETTING} again.")
        if code in ("invalid_payload", "no_text", "too_many_attachments") or status == 400:
            return LeadRejectedError(
                f"{LABEL} refused the message built for this lead ({said}): that is a fault in this app, not in "
                "your settings; report it with the lead id. The lead is kept in the table and the other "
                f"destinations; once fixed, {replay_hint(lead_id)}.")
        if code == "invalid_token":
            return ConfigurationError(
                f"{LABEL} no longer accepts this webhook's URL ({said}): the app was uninstalled or the webhook "
                f"revoked; {NEW_WEBHOOK}.")
        if code == "no_service":
            return ConfigurationError(
                f"{LABEL} does not know this webhook ({said}): it was disabled or removed, or the URL is "
                f"incomplete; {NEW_WEBHOOK}.")
        if code == "action_prohibited":
            return ConfigurationError(
                f"{LABEL} refused the post ({said}): the workspace restricts what this webhook may post there. Ask "
                f"a workspace admin to lift it, or {NEW_WEBHOOK} for another channel.")
        if code == "posting_to_general_channel_denied":
            return ConfigurationError(
                f"{LABEL} refused the post ({said}): only admins may post to this workspace's general channel; "
                f"{NEW_WEBHOOK} for another channel.")
        if code == "channel_not_found":
            return ConfigurationError(
                f"{LABEL} cannot find the webhook's channel ({said}): it was deleted; {NEW_WEBHOOK} for an "
                "existing channel.")
        if code == "channel_is_archived":
            return ConfigurationError(
                f"{LABEL} refused the post ({said}): the webhook's channel is archived. Unarchive it, or "
                f"{NEW_WEBHOOK} for another channel.")
        return ConfigurationError(f"{LABEL} at {host} refused the post ({said}): check {SETTING}.")

    def check(self) -> list[Check]:
        checks = self.url_checks()
        if all(c.ok for c in checks):
            checks.append(check_step(self.name, "webhook", self._probe))
        return checks

    def _probe(self) -> str:
        """POST an empty message, which Slack refuses with `no_text` (nothing is posted) when it knows the
        webhook, or with the error that says why it does not (no_service, invalid_token, channel_...)."""
        response = self.post({})
        code = _error_code(response)
        if response.status_code == 400 and code in ("no_text", "invalid_payload"):
            return (f"OK (Slack knows this webhook: it answered {code} to an empty message, so nothing was "
                    "posted)")
        if response.status_code == 200:
            return "OK (Slack accepted an empty message; nothing visible was posted)"
        raise self.refusal(response)


def _error_code(response: requests.Response) -> str:
    """Slack's answer is one plain-text word (`ok`, `no_service`, ...); anything else is not quoted."""
    text = response.text.strip()
    return text if re.fullmatch(r"[a-z][a-z_]{1,60}", text) else ""
