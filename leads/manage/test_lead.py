"""A Partner Center-shaped test lead, as the Validate button sends it (samples/faq-test-lead.json): every
customer field carries `MSFT_TEST_<ticks>`, so the app marks it as a test lead and each one is new."""

from __future__ import annotations

import json
from datetime import UTC, datetime

_DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def test_lead_body(now: datetime | None = None, offer_title: str = "Test lead sent by the app") -> bytes:
    moment = now or datetime.now(UTC)
    ticks = int((moment - _DOTNET_EPOCH).total_seconds() * 10_000_000)  # .NET ticks, as Partner Center's ids
    marker = f"MSFT_TEST_{ticks}"
    return json.dumps({
        "userDetails": {"FirstName": marker, "LastName": marker, "Email": f"{marker}@test.com",
                        "Phone": "1234567890", "Country": "US", "Company": marker, "Title": marker},
        "LeadSource": "AzureMarketplace",
        "ActionCode": "INS",
        "OfferTitle": offer_title,
        "Description": marker,
    }).encode("utf-8")
