"""Last resort when storage is down: keep the request body on this instance's local disk.

The caller still gets 503 (retrying is right: a re-sent lead is recognised as a duplicate). Best effort
only: on Flex Consumption the HTTP functions and the sweeper timer run on different instances, each with
its own temporary disk (docs/stack.md), so the instance that spooled a body drains it itself
(leads/services/recovery.py) and a body is lost if that instance goes away first."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

_STAMP = "%Y%m%dT%H%M%S%f"
FAILED_SUFFIX = ".failed"  # set aside: kept for a person, never retried


class Spool:
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder or os.path.join(tempfile.gettempdir(), "marketplace-leads-spool"))

    def keep(self, body: bytes, received_at: datetime) -> Path | None:
        """Write atomically (temp name, then rename). Returns None if even the disk refuses."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{received_at.astimezone(UTC):{_STAMP}}-{secrets.token_hex(4)}.json"
            partial = self.folder / (name + ".part")
            partial.write_bytes(body)
            final = self.folder / name
            partial.rename(final)
            return final
        except OSError:
            return None

    def pending(self) -> list[Path]:
        """Bodies waiting, oldest first (`*.failed` files are not among them)."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))

    @staticmethod
    def received_at(path: Path) -> datetime:
        """When the body arrived: written in its name by keep() (else the file's time)."""
        try:
            return datetime.strptime(path.name.split("-", 1)[0], _STAMP).replace(tzinfo=UTC)
        except ValueError:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC)

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    @staticmethod
    def set_aside(path: Path) -> Path | None:
        """Rename to `*.failed` so that later files go on; None if the disk refuses even that."""
        target = path.with_name(path.name + FAILED_SUFFIX)
        with contextlib.suppress(OSError):
            path.rename(target)
            return target
        return None
