"""What the Teams and Slack destinations share: a channel webhook whose URL is the secret, one POST of a JSON
message per lead (or per operational notice), and the URL's own doctor line."""

from __future__ import annotations

from typing import Any

import requests

from leads.core.destination import Check
from leads.core.errors import DestinationError
from leads.destinations.http import new_session, send
from leads.destinations.vendor_common import SettingsProblems, outbound_url_check


class ChatWebhook:
    name: str
    is_crm = False
    label: str  # how sentences name the service ("Slack", "The Teams workflow")
    setting: str  # the URL's setting

    def __init__(self, url: str, timeout: float, missing: str, *, include_pii: bool = False,
                 console_url: str = "") -> None:
        """`missing`: the sentence for an empty URL (where to get one)."""
        self.url = url
        self.timeout = timeout
        self.include_pii = include_pii
        self.console_url = console_url
        self.problems = SettingsProblems()
        self.problems.require(self.url, missing)
        self.session = new_session()

    def post(self, message: dict[str, Any]) -> requests.Response:
        self.problems.raise_first()
        return send(self.session, "POST", self.url, label=self.label, timeout=self.timeout, json=message)

    def refusal(self, response: requests.Response, lead_id: str = "") -> DestinationError:
        raise NotImplementedError

    def url_checks(self) -> list[Check]:
        """The settings' lines, then the URL's; the caller adds its own probe when these passed."""
        checks = self.problems.checks(self.name)
        if all(c.ok for c in checks):
            checks.append(outbound_url_check(self.name, self.setting, self.url))
        return checks
