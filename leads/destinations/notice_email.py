"""Operational notices by e-mail: to LEADS_OPS_EMAIL_TO (else LEADS_EMAIL_TO), through the e-mail
destination's SMTP conversation (leads/destinations/email.py), plain text, no lead data."""

from __future__ import annotations

import email.utils
from dataclasses import replace
from email.message import EmailMessage

from leads.core.notices import Notice
from leads.core.notification import POLICY
from leads.core.settings import Settings
from leads.destinations.email import EmailDestination


class EmailNoticeSender:
    name = "ops e-mail"

    def __init__(self, settings: Settings) -> None:
        self.destination = EmailDestination(replace(settings.email, to=settings.ops_email_to),
                                            timeout=settings.http_timeout)

    @property
    def problem(self) -> str:
        """Why notices cannot go by e-mail (empty when they can): the e-mail settings' own sentence."""
        return self.destination.settings_problem()

    def send(self, notice: Notice) -> None:
        settings = self.destination.settings
        message = EmailMessage(policy=POLICY)
        message["Subject"] = notice.subject
        message["From"] = settings.sender
        message["To"] = ", ".join(settings.to)
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = email.utils.make_msgid(domain=settings.sender.rpartition("@")[2] or None)
        message["X-Leads-Notice"] = f"{notice.condition}; {notice.kind}"
        message.set_content(notice.text, charset="utf-8")
        self.destination.send_message(message)
