"""The audit trail: every operator action of the management API is recorded (who, when, what, which leads,
the outcome), a forgotten address only as its keyed hash, kept LEADS_RETENTION_DAYS, read by the API, the CLI
and the console. Through the dispatcher on Azurite (tests/support/pipeline.py), as each kind of caller."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leads.core import keys
from leads.core.audit import AuditEntry
from leads.core.model import utcnow
from leads.manage.routes import dispatch
from leads.manage.service import ManageService
from leads.services.privacy import Privacy
from leads.storage.audit_table import AuditTable
from tests.support.pipeline import Pipeline, RecordingDestination, build_pipeline

pytestmark = [pytest.mark.azurite]
FLEX_SIGNED_IN = {"WEBSITE_SKU": "FlexConsumption", "WEBSITE_AUTH_ENABLED": "True"}
LOCAL = {"DEVHOST_LOCAL_MODE": "true"}
OID = "00000000-0000-4000-8000-00000000abcd"


def principal(name: str = "Olga Operator") -> str:
    claims = [{"typ": "roles", "val": "Leads.Operator"},
              {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": name},
              {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": OID}]
    document = {"auth_typ": "aad", "claims": claims,
                "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.fixture
def pipeline(azurite: Any, tmp_path: Path) -> Pipeline:
    return build_pipeline(azurite.connection_string, str(tmp_path / "spool"),
                          {"email": RecordingDestination("email", script=[Exception("down")] * 3)},
                          env={"LEADS_RETRY_DELAYS": "3600", "LEADS_RETENTION_DAYS": "30"})


def call(pipeline: Pipeline, method: str, path: str, body: Any = None, env: dict[str, str] | None = None,
         via_key: bool = False, signed_in: bool = False) -> tuple[int, dict[str, Any]]:
    headers = {"Host": "127.0.0.1:7071", "Content-Type": "application/json"}
    if signed_in:
        headers["X-MS-CLIENT-PRINCIPAL"] = principal()
    payload = b"" if body is None else json.dumps(body).encode()
    status, answer, _ = dispatch(method, path, {}, payload, headers, env if env is not None else LOCAL, via_key,
                                 lambda: ManageService(pipeline.runtime))
    return status, answer


def lead(pipeline: Pipeline, email: str) -> str:
    body = {"UserDetails": {"Email": email, "Company": "Contoso"}, "LeadSource": "AzureMarketplace",
            "ActionCode": "INS", "OfferTitle": "Router"}
    lead_id = str(pipeline.ingest.receive("POST", json.dumps(body).encode()).body["id"])
    for message in pipeline.queued():
        pipeline.delivery.handle(message)
    return lead_id


def test_every_action_is_recorded_with_who_what_which_leads_and_the_outcome(pipeline: Pipeline) -> None:
    first, second = lead(pipeline, "first@contoso.example"), lead(pipeline, "second@contoso.example")
    secret_address = f"forget-{uuid.uuid4().hex[:6]}@fabrikam.example"
    forgotten = lead(pipeline, secret_address)
    assert call(pipeline, "POST", f"/leads/{first}/replay", {"destination": "email"}, signed_in=True,
                env=FLEX_SIGNED_IN)[0] == 200
    assert call(pipeline, "POST", "/replay", {"states": ["failed", "retrying"]}, via_key=True,
                env={"WEBSITE_SKU": "FlexConsumption"})[0] == 200
    assert call(pipeline, "POST", "/export", {"email": secret_address})[0] == 200
    assert call(pipeline, "POST", "/forget", {"email": secret_address.upper()})[0] == 200
    status, test_lead = call(pipeline, "POST", "/test-lead", {})
    assert status == 202
    assert call(pipeline, "POST", "/doctor", {})[0] == 200
    assert call(pipeline, "POST", "/leads/20990101T000000000Z-00000000/replay", {})[0] == 404
    assert call(pipeline, "GET", "/status")[0] == 200  # reading is not an action: not recorded

    status, page = call(pipeline, "GET", "/audit")
    assert status == 200
    entries = page["entries"]
    assert [e["action"] for e in entries] == ["replay", "doctor", "test lead", "forget", "export", "replay many",
                                              "replay"]
    failed, doctor, tested, forget, export, many, replay = entries
    assert (replay["who"], replay["object_id"], replay["how"]) == (f"Olga Operator ({OID})", OID, "sign-in")
    assert replay["lead_ids"] == [first] and replay["status"] == 200 and "Queued again" in replay["outcome"]
    assert many["who"] == "function key" and set(many["lead_ids"]) >= {second, forgotten}
    assert export["who"] == forget["who"] == "local"
    assert export["lead_ids"] == [forgotten]
    assert forget["subject"] == export["subject"] and forget["subject"].startswith("k1:")
    assert "leads 1" in forget["outcome"]
    assert tested["lead_ids"] == [test_lead["id"]]
    assert doctor["outcome"].endswith(".") and doctor["lead_ids"] == []
    assert failed["status"] == 404 and failed["lead_ids"] == ["20990101T000000000Z-00000000"]
    for entry in entries:
        assert entry["at"] and entry["outcome"]
    # The address itself is nowhere in the stored rows, in any case; its keyed hash is not its plain hash.
    stored = json.dumps(AuditTable(pipeline.table).rows(), default=str).lower()
    assert secret_address.lower() not in stored and "fabrikam" not in stored
    import hashlib
    assert hashlib.sha256(secret_address.encode()).hexdigest() not in stored


def test_pages_continue_and_a_foreign_token_is_refused(pipeline: Pipeline) -> None:
    for _ in range(3):
        assert call(pipeline, "POST", "/doctor", {})[0] == 200
    status, page = call(pipeline, "GET", "/audit")
    assert status == 200 and len(page["entries"]) == 3
    first = ManageService(pipeline.runtime).audit_page(limit=2)
    assert len(first["entries"]) == 2 and first["continuation"]
    rest = ManageService(pipeline.runtime).audit_page(limit=2, continuation=first["continuation"])
    assert len(rest["entries"]) == 1 and rest["continuation"] is None
    bad = dispatch("GET", "/audit", {"continuation": "bGVhZDp4"}, b"", {"Host": "127.0.0.1"}, LOCAL, False,
                   lambda: ManageService(pipeline.runtime))
    assert bad[0] == 400 and "continuation" in bad[1]["message"]
    for path, what in (("/audit", "the audit trail"), ("/quarantine", "the quarantine")):
        unknown = dispatch("GET", path, {"status": "failed"}, b"", {"Host": "127.0.0.1"}, LOCAL, False,
                           lambda: ManageService(pipeline.runtime))
        assert unknown[0] == 400
        assert unknown[1]["message"] == f"Unknown parameter 'status'; {what} takes limit and continuation."


def test_the_retention_purge_removes_old_entries_only(pipeline: Pipeline) -> None:
    trail = AuditTable(pipeline.table)
    old = AuditEntry(at=utcnow() - timedelta(days=31), who="local", how="local", action="doctor",
                     outcome="All checks passed.", status=200)
    trail.add(old)
    assert call(pipeline, "POST", "/doctor", {})[0] == 200
    counts = Privacy(pipeline.runtime).purge()
    assert counts.get("audit_entries") == 1
    left = trail.rows()
    assert len(left) == 1 and left[0]["PartitionKey"] == keys.AUDIT_PARTITION
    assert left[0]["At"] > utcnow() - timedelta(days=1)


def test_the_cli_prints_the_trail(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], azurite: Any) -> None:
    from leads.cli.app import main
    from tests.conftest import clear_cached_functions

    assert call(pipeline, "POST", "/doctor", {})[0] == 200
    monkeypatch.chdir(tmp_path)
    for name, value in {"AzureWebJobsStorage": azurite.connection_string, "LEADS_TABLE": pipeline.settings.table,
                        "LEADS_QUARANTINE_TABLE": pipeline.settings.quarantine_table,
                        "LEADS_QUEUE": pipeline.settings.queue, "LEADS_DESTINATIONS": "email"}.items():
        monkeypatch.setenv(name, value)
    clear_cached_functions()
    try:
        assert main(["audit", "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert [e["action"] for e in document["entries"]] == ["doctor"]
        assert main(["audit"]) == 0
        out = capsys.readouterr().out
        assert "doctor" in out and "local" in out and "1 action(s)." in out
        assert main(["audit", "--limit", "101"]) == 3  # usage: the sentence names the bound
        assert "--limit must be between 1 and 100; it was 101." in capsys.readouterr().err
    finally:
        clear_cached_functions()
