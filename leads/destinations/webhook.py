"""Webhook: the normalized lead as signed JSON, POSTed to LEADS_WEBHOOK_URL (Power Automate's "When a HTTP
request is received", a Zapier "Catch Hook", your own endpoint). Not a CRM: Partner Center's test leads
go here too. The body is documented in docs/destinations.md (Webhook); the signature (Standard Webhooks) in
leads/core/webhook_signature.py. The URL can carry a key (Power Automate's `sig=`): it is never logged or quoted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import requests

from leads.core.destination import Check, Delivered, Destination
from leads.core.errors import (
    ConfigurationError,
    DestinationError,
    LeadRejectedError,
    SettingsError,
    TransientDestinationError,
)
from leads.core.model import StoredLead, iso
from leads.core.settings import Settings, WebhookSettings
from leads.core.urls import shown_host
from leads.core.webhook_signature import (
    ID_HEADER,
    SECRET_COMMAND,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_header,
    signing_keys,
)
from leads.destinations.http import new_session, send
from leads.destinations.vendor_common import (
    SettingsProblems,
    json_body,
    outbound_url_check,
    replay_hint,
)

LABEL = "The webhook receiver"
SCHEMA = "marketplace-lead/1"


def create(settings: Settings) -> Destination:
    return Webhook(settings.webhook, settings.http_timeout)


def webhook_payload(stored: StoredLead) -> dict[str, Any]:
    """The JSON a receiver gets (docs/destinations.md, Webhook): every field always present, empty when unknown."""
    lead = stored.lead
    return {
        "schema": SCHEMA,
        "id": stored.id,
        "received_at": iso(stored.received_at),
        "is_test": lead.is_test,
        "is_edu": lead.is_edu,
        "action": {"code": lead.action, "meaning": lead.action_meaning},
        "offer": {
            "title": lead.offer_title,
            "name": lead.offer_name,
            "publisher_id": lead.lead_source.publisher_id,
            "offer_id": lead.lead_source.offer_id,
        },
        "customer": asdict(lead.customer),
        "campaign": dict(lead.campaign),
        "lead_source": {
            "raw": lead.lead_source.raw,
            "source": lead.lead_source.source,
            "action": lead.lead_source.action,
            "offer": lead.lead_source.offer,
            "partner_center": stored.lead.partner_center_source,
        },
        "description": lead.description,
        "extra": dict(lead.extra),
    }


def webhook_body(stored: StoredLead) -> bytes:
    # The signature covers these exact bytes: receivers must verify the raw body, not a re-serialization.
    return json.dumps(webhook_payload(stored), ensure_ascii=False, separators=(",", ":"), default=str).encode()


class Webhook:
    name = "webhook"
    is_crm = False

    def __init__(self, settings: WebhookSettings, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.url = settings.url
        self._keys: tuple[bytes, ...] = ()
        self.timeout = timeout
        self.clock = clock
        self.problems = SettingsProblems()
        self.problems.require(self.url, "LEADS_WEBHOOK_URL is not set: give the HTTPS URL that receives each lead "
                                        "(e.g. a Power Automate 'When a HTTP request is received' URL).")
        self.problems.require(settings.secret, "LEADS_WEBHOOK_SECRET is not set: leads are only sent signed. Create "
                                               f"one with {SECRET_COMMAND} and give the receiver the same value.")
        try:
            self._keys = signing_keys(settings.secret)
        except SettingsError as error:
            self.problems.sentences.append(error.explanation)
        self.session = new_session()

    def deliver(self, stored: StoredLead) -> Delivered:
        self.problems.raise_first()
        body = webhook_body(stored)
        timestamp = int(self.clock())  # this attempt's time: a re-send is signed anew, with the same id
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            ID_HEADER: stored.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature_header(self._keys, stored.id, timestamp, body),
        }
        # Redirects are not followed: requests would turn a 301/302 into a GET and drop the lead.
        response = send(self.session, "POST", self.url, label=LABEL, timeout=self.timeout, data=body,
                        headers=headers)
        if 200 <= response.status_code < 300:
            return Delivered(_receipt(response))
        raise self._refusal(response, stored.id)

    def _refusal(self, response: requests.Response, lead_id: str) -> DestinationError:
        status = response.status_code
        host = shown_host(self.url)
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            target = shown_host(location) if location else "another address"
            return ConfigurationError(
                f"{LABEL} at {host} answered HTTP {status}, a redirect to {target}: redirects are not followed "
                "(the POST body would be lost). Set LEADS_WEBHOOK_URL to the final URL.")
        if status in (401, 403):
            return ConfigurationError(
                f"{LABEL} at {host} refused the request (HTTP {status}): if it verifies the signature, "
                "LEADS_WEBHOOK_SECRET differs from the receiver's secret (give both the same whsec_ value; while "
                "rotating, LEADS_WEBHOOK_SECRET holds the new and the old one, space-separated); if it needs "
                "a key in the URL (Power Automate's sig=, a Functions code=), copy the full URL into "
                "LEADS_WEBHOOK_URL again.")
        if status in (404, 405, 410):
            return ConfigurationError(
                f"{LABEL} at {host} answered HTTP {status}: the URL is wrong, or the flow was deleted or turned off. "
                "Copy the receiver's current URL into LEADS_WEBHOOK_URL.")
        if status == 408:
            return TransientDestinationError(f"{LABEL} at {host} timed out reading the lead (HTTP 408); will retry.")
        if status in (400, 409, 413, 415, 422):
            return LeadRejectedError(
                f"{LABEL} at {host} refused this lead (HTTP {status}): its own logs say why. Fix the receiver "
                f"(the body is described in docs/destinations.md, Webhook), {replay_hint(lead_id)}.")
        return ConfigurationError(
            f"{LABEL} at {host} answered HTTP {status}: check LEADS_WEBHOOK_URL and the receiver.")

    def check(self) -> list[Check]:
        checks = self.problems.checks(self.name)
        if any(not c.ok for c in checks):
            return checks
        checks.append(outbound_url_check(self.name, "LEADS_WEBHOOK_URL", self.url))
        count = len(self._keys)
        checks.append(Check(self.name, "secret", True,
                            "OK (a Standard Webhooks whsec_ secret)" if count == 1 else
                            f"OK ({count} whsec_ secrets: each request carries {count} signatures, so receivers "
                            "holding either secret verify; remove the old one once every receiver has the new)"))
        # No request is sent: a made-up lead would start the receiver's flow (mails, CRM records).
        checks.append(Check(self.name, "receiver", True,
                            "Not contacted (a test request would look like a lead). Use Partner Center's Validate "
                            "button, or replay a lead, to see the receiver answer."))
        return checks


def _receipt(response: requests.Response) -> str:
    """What the receiver calls this delivery, when it says: a JSON `id` (Zapier answers one), else Power
    Automate's run id header."""
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("id"), str | int) and not isinstance(body.get("id"), bool):
        return str(body["id"])
    return response.headers.get("x-ms-workflow-run-id", "")
