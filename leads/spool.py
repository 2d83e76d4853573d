"""Last resort when storage is down: keep the request body on local disk, re-ingest it later.

The caller still gets 503 (retrying is right: a re-sent lead is recognised as a duplicate), but a lead
Partner Center never re-sends is not lost while this instance lives (the sweeper drains the spool)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path


class Spool:
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder or os.path.join(tempfile.gettempdir(), "marketplace-leads-spool"))

    def keep(self, body: bytes, received_at: datetime) -> Path | None:
        """Write atomically (temp name, then rename). Returns None if even the disk refuses."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{received_at:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.json"
            partial = self.folder / (name + ".part")
            partial.write_bytes(body)
            final = self.folder / name
            partial.rename(final)
            return final
        except OSError:
            return None

    def pending(self) -> Iterator[Path]:
        if self.folder.is_dir():
            yield from sorted(self.folder.glob("*.json"))
