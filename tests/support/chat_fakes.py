"""Fake Slack incoming webhook and Teams workflow endpoints, answering as the vendors document, on FakeServer.

Slack (docs.slack.dev, "Sending messages using incoming webhooks", Handling errors; api.slack.com changelog
2016-05-17 "Improving error conditions for Incoming Webhooks"; "Rate limits": incoming webhooks answer 429 with
Retry-After): 200 `ok`; 400 `invalid_payload`, `no_text`; 403 `invalid_token`, `action_prohibited`,
`posting_to_general_channel_denied`; 404 `no_service`, `channel_not_found`; 410 `channel_is_archived`; 500
`rollup_error`. Each answer is a plain-text word. Slack documents the answers, not the order it checks in: this
fake checks the webhook (URL) before the channel and the channel before the payload.

Teams workflow (the Request trigger of Azure Logic Apps / Power Automate): 202 Accepted when the run starts
(Microsoft Learn, "Receive and respond to inbound HTTPS calls", connectors-native-reqres); 400 when the body
does not match a trigger schema with Schema Validation on (same page; code `TriggerInputSchemaMismatch`); 401
`DirectApiAuthorizationRequired` without the URL's signature (quoted in MicrosoftDocs/azure-docs issue 60706);
404 `WorkflowNotFound`, "The workflow '...' could not be found." (Azure/logicapps issue 321); 400
`WorkflowTriggerIsNotEnabled` for a workflow that is turned off or deleted (the answer users report for a
disabled flow; not on Microsoft Learn). Errors are `{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_http import FakeServer, Recorded, Reply

SLACK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
TEAMS_PATH = "/workflows/6c1e7a3b9f0d4c2e8a5b7d9f1e3c5a7b/triggers/manual/paths/invoke"
TEAMS_SIG = "Qm9ndXMtc2lnbmF0dXJlLWZvci10ZXN0cw"
SLACK_ERRORS = {"invalid_payload": 400, "invalid_token": 403, "action_prohibited": 403,
                "posting_to_general_channel_denied": 403, "no_service": 404, "channel_not_found": 404,
                "channel_is_archived": 410, "rollup_error": 500}


@dataclass
class FakeSlack:
    """`state` is "ok" or one of SLACK_ERRORS' words, or "rate_limited"."""

    server: FakeServer
    state: str = "ok"
    retry_after: str = "30"
    path: str = SLACK_PATH  # the webhook's secret
    posted: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.on("POST", self.path, self._answer)

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.path}"

    def _answer(self, request: Recorded) -> Reply:
        if self.state == "rate_limited":
            return Reply(429, "rate_limited", headers={"Retry-After": self.retry_after})
        if self.state in SLACK_ERRORS:
            return Reply(SLACK_ERRORS[self.state], self.state)
        try:
            message = json.loads(request.body)
        except ValueError:
            return Reply(400, "invalid_payload")
        if not isinstance(message, dict):
            return Reply(400, "invalid_payload")
        if not message.get("text") and not message.get("blocks"):
            return Reply(400, "no_text")  # nothing is posted
        self.posted.append(message)
        return Reply(200, "ok")


@dataclass
class FakeTeamsWorkflow:
    """`state`: "enabled", "disabled" (turned off or deleted), "gone" (not found), "schema" (a trigger schema
    the card does not match)."""

    server: FakeServer
    state: str = "enabled"
    sig: str = TEAMS_SIG  # the URL's key
    posted: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.on("POST", TEAMS_PATH, self._answer)

    @property
    def url(self) -> str:
        return (f"{self.server.url}{TEAMS_PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
                f"&sig={self.sig}")

    def _answer(self, request: Recorded) -> Reply:
        if self.state == "gone":
            return _error(404, "WorkflowNotFound", "The workflow '6c1e7a3b' could not be found.")
        if request.query.get("sig") != [self.sig]:
            return _error(401, "DirectApiAuthorizationRequired",
                          "The request must be authenticated only by Shared Access scheme.")
        if self.state == "disabled":
            return _error(400, "WorkflowTriggerIsNotEnabled",
                          "Could not trigger workflow '6c1e7a3b' as it is in state 'Disabled'.")
        if self.state == "schema":
            return _error(400, "TriggerInputSchemaMismatch", "The input body for trigger 'manual' of type "
                                                             "'Request' did not match its schema definition.")
        self.posted.append(json.loads(request.body))
        return Reply(202, None, headers={"x-ms-workflow-run-id": f"0858{len(self.posted):016d}"})


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def card_facts(message: dict[str, Any]) -> dict[str, str]:
    """Title -> value of every FactSet in a posted Teams message."""
    card = message["attachments"][0]["content"]
    return {fact["title"]: fact["value"] for block in card["body"] if block["type"] == "FactSet"
            for fact in block["facts"]}
