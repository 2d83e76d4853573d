"""Fuzz the HTTP trigger with hostile JSON objects in Partner Center's shape, on a real Azurite held to
Azure's size limits (tests/support/azure_limits_enforcer.py): never a 5xx; every 4xx explains itself in
JSON; every 202 is stored (read back by id) and has its delivery message in the queue.

The trigger function is called directly (as the host calls it), not over HTTP: 10,000 cases in about 3½
minutes on 2 cores. Reproducible: derandomized, no example database. Prints one summary line."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads import runtime as runtime_module
from leads.core.messages import decode_message
from leads.triggers import http
from tests.triggers.test_http_triggers import app_env, call  # noqa: F401 - app_env is a fixture

# 10,000 cases take about 210 s on a quiet 2-core machine; the bound is generous so a loaded CI machine passes.
pytestmark = [pytest.mark.azurite, pytest.mark.timeout(900)]

CASES = int(os.environ.get("FUZZ_CASES", "10000"))  # FUZZ_CASES=500 for a quick run

USER_FIELDS = ["FirstName", "LastName", "Email", "Phone", "Country", "Company", "Title"]
TOP_FIELDS = ["LeadSource", "ActionCode", "OfferTitle", "Description", "OfferDisplayName"]
ATOMS = [
    "Ana", "López", "ana@fabrikam.example", "student@uni.edu", "+34 600 000 000", "Contoso",
    "数据库管理员", "테스트", "😀", "👩‍👩‍👧‍👦", "🇪🇸", "e\u0301\u0301\u0301", "Z\u0351\u0352\u0353",
    "\u202eevil\u202c", "\u200f\u200e", "مرحبا بالعالم", "שלום", "\ufeff", "\ufffe", "\u2028\u2029",
    "\u0000", "\u0007", "\u001b[31m", "\u007f", "\u0085", "\t\n\r", "\\", '"',
    "\r\nX-Injected: yes", "\r\n\r\n<html>", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
    "{{7*7}}", "${jndi:ldap://x/a}", "'; DROP TABLE leads; --", "=cmd|' /C calc'!A0", "../../etc/passwd",
    "\ud800", "\udfff", "\ud83d", "\ude00", "a\udbffb", "MSFT_TEST_636573304831318844",
    "AzureMarketplace", "AppSource (SPZA)-PLT|fabrikamsoft.lead-router", "INS", "PLT", "DNC",
    "Campaigns: mktcmpid=x&partnerid=y", '{"mktcmpid": "😀", "n": 1}', "", " ",
]
SIZES = [2_000, 16_000, 21_000, 32_000, 33_000, 40_000, 60_000, 64_000, 65_600]


def cased(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted({name, name[0].lower() + name[1:], name.lower(), name.upper()}))


def repeated(atom: str, utf8_bytes: int) -> str:
    """`atom` repeated to about `utf8_bytes` once in the body (near Azure's and the app's limits)."""
    width = max(1, len(json.dumps(atom, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2)
    return atom * max(1, utf8_bytes // width)


atoms = st.sampled_from(ATOMS)
short_text = st.one_of(atoms, st.lists(atoms, min_size=2, max_size=6).map("".join), st.text(max_size=20))
huge_text = st.builds(repeated, atoms.filter(bool), st.sampled_from(SIZES))


def weighted(rare: st.SearchStrategy[Any], common: st.SearchStrategy[Any], one_in: int) -> st.SearchStrategy[Any]:
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else common)


text = weighted(huge_text, short_text, 16)  # about one lead in four has a string near a limit
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), short_text)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner,
                                                                                          max_size=3), max_leaves=8)
value = weighted(junk, text, 8)  # strings; sometimes numbers, nulls, nested junk


def fields(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(st.tuples(st.sampled_from(names).flatmap(cased), value), max_size=len(names)).map(dict)


user_details = weighted(junk, fields(USER_FIELDS), 6)
unknown = st.dictionaries(st.one_of(short_text, st.sampled_from(["PublisherDisplayName", "extra", "Extra"])),
                          junk, max_size=3)


@st.composite
def partner_center_objects(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {}
    shape = draw(st.sampled_from(["UserDetails", "CustomerInfo", "CustomerInfoAsText", "none"]))
    if shape == "CustomerInfoAsText":  # Partner Center's Azure Table destination row
        document[draw(cased("CustomerInfo"))] = json.dumps(draw(user_details), ensure_ascii=draw(st.booleans()))
    elif shape != "none":
        document[draw(cased(shape))] = draw(user_details)
    document.update(draw(fields(TOP_FIELDS)))
    document.update(draw(unknown))
    return document


bodies = st.builds(lambda document, ascii_only: json.dumps(document, ensure_ascii=ascii_only).encode(
    "utf-8", "surrogatepass"), partner_center_objects(), st.booleans())


class Ledger:
    """What the fuzz saw; the queue is read (and emptied) every few hundred leads to keep Azurite small."""

    def __init__(self) -> None:
        self.answers: Counter[int] = Counter()
        self.reasons: Counter[str] = Counter()
        self.expected: set[str] = set()
        self.queued: set[str] = set()

    def drain(self) -> None:
        queue = runtime_module.runtime().queue.queue
        while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=600)):
            self.queued.update(decode_message(m.content).lead_id for m in batch)
        queue.clear_messages()


@pytest.fixture
def ledger(app_env: Path) -> Iterator[Ledger]:  # noqa: F811 - the imported fixture
    yield Ledger()


def test_no_hostile_lead_gets_a_5xx_and_every_accepted_one_is_stored_and_enqueued(
        ledger: Ledger, figure: Callable[[str], None]) -> None:
    started = time.monotonic()

    @settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def one_case(body: bytes) -> None:
        response = call(http.ingest_lead, body=body)
        status = response.status_code
        answer = json.loads(response.get_body())
        ledger.answers[status] += 1
        ledger.reasons[answer.get("error", "")] += 1
        assert status < 500, answer
        assert response.mimetype == "application/json"
        if status != 202:
            assert 400 <= status < 500 and isinstance(answer.get("message"), str) and answer["message"], answer
            return
        assert runtime_module.runtime().table.load(answer["id"]) is not None
        if not answer["duplicate"]:
            ledger.expected.add(answer["id"])
            if len(ledger.expected) % 300 == 0:
                ledger.drain()

    one_case()
    ledger.drain()
    elapsed = time.monotonic() - started
    cases = sum(ledger.answers.values())
    figure(f"fuzz_ingest: {cases} cases in {elapsed:.1f} s; answers {dict(sorted(ledger.answers.items()))}; "
           f"{len(ledger.expected)} new leads, all stored and enqueued; rejections {dict(ledger.reasons)}")
    assert cases >= CASES
    assert ledger.expected <= ledger.queued, f"{len(ledger.expected - ledger.queued)} accepted leads never enqueued"
