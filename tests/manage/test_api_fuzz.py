"""schemathesis drives the local host (real Azurite) from the app's own /api/openapi.json: every operation,
with a bounded number of generated cases, and the checks that hold locally: no 5xx, every status code,
content type, header and body as described (every error JSON with a message), data outside the description
refused. Prints the case count.

The description is served as is; the test only adds explicit examples to the `{id}` path parameters (a
seeded lead and a seeded rejected request), so the detail, replay and re-ingest routes reach real rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.http_json import post

MAX_EXAMPLES = 8
# Not checked here, and why:
# - ignored_auth, missing_required_header: the local host does not check function keys (as Core Tools), and
#   sign-in exists only in Azure (tests/manage/test_auth.py tests those rules);
# - unsupported_method: the Functions host answers 404, not 405, to a method its binding does not list
#   (Azure/azure-functions-host#10098), and so does devhost;
# - positive_data_acceptance: a value of the right type can still be refused with a 400 that says why (a
#   continuation token this app never gave, a destination the lead does not have, a date that is not one).
EXCLUDED_CHECKS = "ignored_auth,missing_required_header,unsupported_method,positive_data_acceptance"
# Nor methods outside HTTP's usual set (QUERY, TRACE): devhost's HTTP server (Python's http.server) answers them
# 501 before any route is looked up, where the Functions host would answer 404.
CONFIG = "[phases.coverage]\nunexpected-methods = []\n"
_CASES = re.compile(r"(\d+)\s+generated", re.IGNORECASE)




def with_examples(document: dict[str, Any], lead_id: str, rejected_id: str) -> dict[str, Any]:
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "id":
                    parameter["examples"] = {"seeded": {"value": rejected_id if "/quarantine/" in path else lead_id}}
    return document


@pytest.mark.timeout(300)
def test_schemathesis_against_the_local_host(local_host_factory: Callable[..., Any], tmp_path: Path,
                                             figure: Callable[[str], None]) -> None:
    suffix = uuid.uuid4().hex[:8]
    host = local_host_factory({"LEADS_TABLE": f"fuzz{suffix}", "LEADS_QUARANTINE_TABLE": f"fuzzq{suffix}",
                               "LEADS_QUEUE": f"fuzz-{suffix}", "LEADS_DESTINATIONS": "email",
                               "LEADS_SPOOL_DIR": str(tmp_path / "spool"), "WEBSITE_INSTANCE_ID": None,
                               "WEBSITE_AUTH_ENABLED": None})
    sample = Path("samples/faq-test-lead.json").read_bytes()
    status, accepted = post(host.url("leads"), sample)
    assert status == 202
    for n in range(3):
        post(host.url("leads"), json.dumps({"OfferTitle": f"fuzz {n}", "UserDetails": {"Email": f"p{n}@x.example"}})
             .encode())
    assert post(host.url("leads"), b"{not json")[0] == 400
    with urllib.request.urlopen(host.url("manage/quarantine?limit=1"), timeout=30) as response:
        rejected_id = json.loads(response.read())["requests"][0]["id"]
    with urllib.request.urlopen(host.url("openapi.json"), timeout=30) as response:
        document = json.loads(response.read())
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(with_examples(document, accepted["id"], rejected_id)))
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run", str(spec),
         "--url", host.url("").rstrip("/"), "--header", f"x-functions-key: {host.keys.host}",  # keys are checked
         "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS, "--generation-with-security-parameters", "false",
         "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing",
         "--workers", "1", "--request-timeout", "30", "--no-color", "--seed", "8",
         "--generation-database", "none"],
        capture_output=True, text=True, timeout=280, check=False, cwd=tmp_path)
    output = run.stdout + run.stderr
    cases = sum(int(n) for n in _CASES.findall(output))
    figure(f"schemathesis: {cases} cases generated over {len(document['paths'])} paths, exit {run.returncode}")
    assert run.returncode == 0, output[-6000:]
