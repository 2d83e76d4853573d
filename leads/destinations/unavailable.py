"""A destination that cannot work with the current settings: every delivery to it is `blocked` with the
sentence naming the setting to fix (and retried, so fixing the setting and restarting resumes it), and the
doctor shows the same sentence. The other destinations are built and deliver as usual."""

from __future__ import annotations

from leads.core.destination import Check, Delivered, Skipped
from leads.core.errors import ConfigurationError
from leads.core.model import StoredLead
from leads.core.routing import CRM_TYPES, destination_type


class Unavailable:
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.is_crm = destination_type(name) in CRM_TYPES
        self.reason = reason

    def deliver(self, stored: StoredLead) -> Delivered | Skipped:
        raise ConfigurationError(self.reason)

    def check(self) -> list[Check]:
        return [Check(self.name, "settings", False, self.reason)]
