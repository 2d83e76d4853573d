"""A delivery worker in a process of its own, so a test can kill it (SIGKILL) in the middle of a delivery:
`python -m tests.support.crash_worker <connection string> <env as JSON> <receipts folder>`.

It stores one lead, prints its id, and delivers it to `email` (answers at once) and `webhook` (takes the
call, then hangs): the test kills it once e-mail's answer is in the table."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from leads.core.destination import Delivered
from leads.core.model import StoredLead
from tests.support.pipeline import RecordingDestination, build_pipeline

LEAD = {"UserDetails": {"FirstName": "Ana", "LastName": "Lopez", "Email": "ana@fabrikam.example",
                        "Company": "Fabrikam"}, "LeadSource": "AzureMarketplace", "ActionCode": "INS",
        "OfferTitle": "Lead Router"}


@dataclass
class FileRecordingDestination(RecordingDestination):
    """Appends each lead id it is given to `<folder>/<name>.txt` (visible across processes), then answers
    after `hang_seconds`."""

    folder: Path = Path()
    hang_seconds: float = 0.0

    def deliver(self, stored: StoredLead) -> Delivered:
        with (self.folder / f"{self.name}.txt").open("a", encoding="utf-8") as receipts:
            receipts.write(stored.id + "\n")
        time.sleep(self.hang_seconds)
        return Delivered(f"{self.name}-ok")

    def receipts(self) -> list[str]:
        path = self.folder / f"{self.name}.txt"
        return path.read_text(encoding="utf-8").split() if path.exists() else []


def main(connection_string: str, env_json: str, folder: str) -> None:
    destinations = {"email": FileRecordingDestination("email", folder=Path(folder)),
                    "webhook": FileRecordingDestination("webhook", folder=Path(folder), hang_seconds=600)}
    pipeline = build_pipeline(connection_string, folder, destinations, env=json.loads(env_json))
    answer = pipeline.ingest.receive("POST", json.dumps(LEAD).encode())
    print(answer.body["id"], flush=True)
    [message] = pipeline.queued()
    pipeline.delivery.handle(message)


if __name__ == "__main__":
    main(*sys.argv[1:4])
