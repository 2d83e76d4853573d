"""Leads and settings shared by the destination tests."""

from __future__ import annotations

from datetime import UTC, datetime

from leads.core.model import Customer, Lead, LeadSource, StoredLead
from leads.core.settings import Settings, load_settings

LEAD_ID = "20261121T120000000Z-0a1b2c3d"
CUSTOMER = Customer(first_name="Ada", last_name="Lovelace", email="ada@contoso.example", phone="16175555555",
                    country="US", company="Contoso", title="CTO")


def stored_lead(customer: Customer = CUSTOMER, lead_id: str = LEAD_ID, **lead: object) -> StoredLead:
    values: dict[str, object] = {
        "customer": customer,
        "lead_source": LeadSource(raw="AzureMarketplace-INS|contoso.analytics", source="AzureMarketplace",
                                  action="INS", offer="contoso.analytics"),
        "action_code": "INS",
        "offer_title": "Contoso Analytics",
        "description": "Please call me about pricing.",
        "campaign": {"mktcmpid": "spring-launch"},
    }
    values.update(lead)
    return StoredLead(lead_id, datetime(2026, 11, 21, 12, 0, tzinfo=UTC), Lead(**values))  # type: ignore[arg-type]


def edu_lead() -> StoredLead:
    """What Partner Center sends for a .edu customer: no personal data at all."""
    return stored_lead(Customer(), is_edu=True)


def settings(**env: str) -> Settings:
    return load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "LEADS_HTTP_TIMEOUT": "5", **env})
