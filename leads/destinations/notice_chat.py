"""Operational notices in a Teams or Slack channel too (LEADS_OPS_CHAT names the configured `teams`/`slack`
destinations that also get them): the ops e-mail's text, posted through that destination's own webhook and
escaped for its markup. Its refusals are the destination's own sentences."""

from __future__ import annotations

from typing import Any

from leads.core.errors import ConfigurationError
from leads.core.notices import Notice
from leads.destinations.chat import ChatWebhook
from leads.destinations.slack import Slack, mrkdwn_text
from leads.destinations.teams import CARD_VERSION, card_text


class ChatNoticeSender:
    def __init__(self, name: str, chat: ChatWebhook) -> None:
        self.name = name
        self.chat = chat

    def send(self, notice: Notice) -> None:
        response = self.chat.post(slack_notice(notice) if isinstance(self.chat, Slack) else teams_notice(notice))
        if not 200 <= response.status_code < 300:
            raise self.chat.refusal(response)


def slack_notice(notice: Notice) -> dict[str, Any]:
    """Plain mrkdwn text (a notice has no fields to lay out); the subject in bold."""
    return {"text": f"*{mrkdwn_text(notice.subject)}*\n{mrkdwn_text(notice.text)}"}


def teams_notice(notice: Notice) -> dict[str, Any]:
    """A message with one Adaptive Card: the subject, then one TextBlock per paragraph."""
    paragraphs = [p.strip() for p in notice.text.split("\n\n") if p.strip()]
    body = [{"type": "TextBlock", "text": card_text(notice.subject), "weight": "Bolder", "size": "Medium",
             "wrap": True}]
    body += [{"type": "TextBlock", "text": card_text(p), "wrap": True} for p in paragraphs]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": CARD_VERSION, "body": body}
    return {"type": "message", "summary": notice.subject,
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


def chat_sender(name: str, destination: object) -> ChatNoticeSender:
    """The sender for a built destination (a named one wraps its type's); a destination that is not a Teams or
    Slack one cannot carry notices."""
    chat = getattr(destination, "inner", destination)
    if not isinstance(chat, ChatWebhook):
        raise ConfigurationError(f"LEADS_OPS_CHAT names {name}, which is not a teams or slack destination: "
                                 "notices go to e-mail and to the Teams or Slack destinations it names.")
    return ChatNoticeSender(name, chat)
