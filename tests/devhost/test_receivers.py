"""devhost.receivers, the local stand-ins docs/destinations.md suggests for `make run`: each destination
delivers to it, and the webhook stand-in verifies with the standardwebhooks library as each of its secrets."""

from __future__ import annotations

import base64
import threading

import pytest

from devhost.receivers import receivers
from leads.core.destination import Delivered
from leads.destinations import build_destination
from tests.destinations.sample import LEAD_ID, settings, stored_lead

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()


def test_each_destination_reaches_its_stand_in_and_the_signature_verifies_as_both_secrets(
        capsys: pytest.CaptureFixture[str]) -> None:
    server = receivers(0, [OLD, NEW])
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        env = settings(LEADS_WEBHOOK_URL=f"{base}/webhook", LEADS_WEBHOOK_SECRET=f"{NEW} {OLD}",
                       LEADS_TEAMS_WEBHOOK_URL=f"{base}/teams", LEADS_SLACK_WEBHOOK_URL=f"{base}/slack")
        answers = [build_destination(name, env).deliver(stored_lead()) for name in ("webhook", "teams", "slack")]
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [Delivered(""), Delivered("local-run-1"), Delivered("")]
    lines = capsys.readouterr().out.splitlines()
    assert f"webhook #1: webhook-id {LEAD_ID}, signature verified with secret 1 and 2" in lines
    assert f"teams #1: Adaptive Card for lead {LEAD_ID}" in lines
    assert any(line.startswith("slack #1: ") for line in lines)
