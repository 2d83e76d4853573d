"""tests/support/azurite_preload.py, the benchmarks' way to put many leads into Azurite: the rows it writes into
Azurite's database file are the ones Azurite stores through its API, and Azurite works on them after a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from leads.core.model import utcnow
from leads.services.privacy import Privacy
from tests.support.azurite_preload import disk_azurite, sampled
from tests.support.seeding import seed, varied_lead

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


def test_preloaded_leads_read_back_and_serve_forget_and_export(tmp_path: Path) -> None:
    now = utcnow()
    leads = [replace(stored, lead=replace(stored.lead, is_test=n % 4 == 0))
             for n, stored in ((n, varied_lead(n, now)) for n in range(1, 41))]
    with disk_azurite(tmp_path) as disk:
        seed(disk.pipeline.table, leads[:5])
        kept = list(leads[:5])
        summary = disk.preload(sampled(leads[5:], 10, kept), check=leads[:5])
        assert (summary["added"], summary["checked"]) == (35 + 35 + 9, 5 + 5 + 1)  # leads, subject rows, test rows
        assert disk.verify(kept) == len(kept) == 5 + 5
        privacy = Privacy(disk.pipeline.runtime)
        assert [lead["id"] for lead in privacy.export(leads[-1].lead.customer.email)["leads"]] == [leads[-1].id]
        assert privacy.forget(leads[-2].lead.customer.email)["leads"] == 1
        assert disk.pipeline.table.load(leads[-2].id) is None
