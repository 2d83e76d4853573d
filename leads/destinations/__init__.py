"""Layer: adapters (destinations). One module per CRM, mail or chat service, built by name; they may import only the
core. Each module is imported only when configured (keeps cold start light)."""

from __future__ import annotations

import importlib
import logging
import traceback

from leads.core.destination import Check, Delivered, Destination, Skipped
from leads.core.errors import LeadsError
from leads.core.routing import destination_type
from leads.core.settings import Settings, instance_settings_renamed
from leads.destinations.unavailable import Unavailable

log = logging.getLogger("leads.destinations")
# urllib3 writes each request line (path and query) at DEBUG. Ours can carry a key (a Power Automate webhook
# URL's sig=) or personal data (HubSpot updates a contact by e-mail in the path): never below INFO, even when
# the host's log level is turned down to Debug.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)
_MODULES = {
    "email": "leads.destinations.email",
    "webhook": "leads.destinations.webhook",
    "dynamics": "leads.destinations.dynamics",
    "salesforce": "leads.destinations.salesforce",
    "marketo": "leads.destinations.marketo",
    "hubspot": "leads.destinations.hubspot",
    "teams": "leads.destinations.teams",
    "slack": "leads.destinations.slack",
}


def build_destination(name: str, settings: Settings) -> Destination:
    """Each destination module exposes `create(settings) -> Destination`. Raises on a bad setting. A named one
    (`webhook:partners`) is its type's module created with the settings of its own prefix."""
    module = importlib.import_module(_MODULES[destination_type(name)])
    destination: Destination = module.create(settings.for_destination(name))
    if name != destination_type(name):
        from leads.destinations.named import NamedDestination

        return NamedDestination(name, destination)
    return destination


def usable_destination(name: str, settings: Settings) -> Destination:
    """The destination, or an `Unavailable` one saying which setting keeps it from working: never raises,
    so one destination's bad setting cannot stop the others."""
    if name in settings.problems:
        return Unavailable(name, settings.problems[name])
    try:
        return build_destination(name, settings)
    except ImportError:
        return Unavailable(name, f"{name} is not available in this build (its module is missing).")
    except LeadsError as error:
        return Unavailable(name, instance_settings_renamed(error.explanation, name))
    except Exception as error:  # noqa: BLE001 - a bug in one destination's setup must not stop the others
        # The frames only: the message could quote a setting's value.
        log.error("%s could not be set up (%s) at\n%s", name, type(error).__name__,
                  "".join(traceback.format_tb(error.__traceback__)))
        return Unavailable(name, f"{name} could not be set up ({type(error).__name__}); see the app's logs, "
                                 "and run python -m leads doctor.")


def build_destinations(settings: Settings) -> dict[str, Destination]:
    destinations = {name: usable_destination(name, settings) for name in settings.destinations}
    for destination in destinations.values():
        if isinstance(destination, Unavailable):
            log.warning("destination %s is blocked: %s", destination.name, destination.reason)
    return destinations


__all__ = ["Check", "Delivered", "Destination", "Skipped", "Unavailable", "build_destination",
           "build_destinations", "usable_destination"]
