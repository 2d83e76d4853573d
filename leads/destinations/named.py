"""A named destination (`webhook:partners`): the type's own module, created with the settings read from the
instance's prefix, under the instance's name. Its sentences name the instance's settings
(LEADS_WEBHOOK_PARTNERS_URL, not LEADS_WEBHOOK_URL), so a person fixes the right one."""

from __future__ import annotations

from leads.core.destination import Check, Delivered, Destination, Skipped
from leads.core.errors import DestinationError
from leads.core.model import StoredLead
from leads.core.settings import instance_settings_renamed


class NamedDestination:
    def __init__(self, name: str, inner: Destination) -> None:
        self.name = name
        self.inner = inner
        self.is_crm = inner.is_crm

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        try:
            outcome = self.inner.deliver(stored)
        except DestinationError as error:
            error.explanation = self._renamed(error.explanation)
            error.args = (error.explanation,)
            raise
        return Skipped(self._renamed(outcome.reason)) if isinstance(outcome, Skipped) else outcome

    def check(self) -> list[Check]:
        return [Check(self.name, check.name, check.ok, self._renamed(check.message)) for check in self.inner.check()]

    def send_test(self) -> list[Check]:
        """`doctor --send-test-email` for an e-mail instance; nothing for a type that has no such test."""
        test = getattr(self.inner, "send_test", None)
        checks: list[Check] = test() if test is not None else []
        return [Check(self.name, check.name, check.ok, self._renamed(check.message)) for check in checks]

    def _renamed(self, text: str) -> str:
        return instance_settings_renamed(text, self.name)
