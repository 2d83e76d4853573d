"""Destinations, built by name. Each module is imported only when configured (keeps cold start light)."""

from __future__ import annotations

import importlib

from leads.destinations.base import Check, Delivered, Destination, Skipped
from leads.settings import Settings

_MODULES = {
    "email": "leads.destinations.email",
    "webhook": "leads.destinations.webhook",
    "dynamics": "leads.destinations.dynamics",
    "salesforce": "leads.destinations.salesforce",
    "marketo": "leads.destinations.marketo",
    "hubspot": "leads.destinations.hubspot",
}


def build_destination(name: str, settings: Settings) -> Destination:
    """Each destination module exposes `create(settings) -> Destination`."""
    module = importlib.import_module(_MODULES[name])
    destination: Destination = module.create(settings)
    return destination


def build_destinations(settings: Settings) -> dict[str, Destination]:
    return {name: build_destination(name, settings) for name in settings.destinations}


__all__ = ["Check", "Delivered", "Destination", "Skipped", "build_destination", "build_destinations"]
