"""A local SMTP server that keeps every message as an .eml file the user can open (`make run`).

aiosmtpd's Controller cannot take port 0 (docs/stack.md): `free_port()` binds a socket to port 0 first.
Files are named `<UTC time>-<counter>.eml` so they sort in arrival order.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("devhost.mail")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server itself binds (asyncio sets SO_REUSEADDR): a port left in TIME_WAIT by the previous
        # `make run` is free, so the catcher keeps port 1025 and `python -m leads doctor` still finds it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class EmlFolderHandler:
    """aiosmtpd handler: writes each message's bytes, as received, to `<folder>/<time>-<n>.eml`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            path = self.folder / f"{stamp}-{next(self._counter):04d}.eml"
        content = envelope.original_content or envelope.content
        path.write_bytes(content if isinstance(content, bytes) else str(content).encode("utf-8"))
        log.info("mail: %s -> %s saved as %s", envelope.mail_from, ", ".join(envelope.rcpt_tos), path)
        return "250 Message accepted for delivery"


class MailCatcher:
    """`start()` serves SMTP on host:port (port 0: a free one) and writes messages into `folder`."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.folder = folder
        self.host = host
        self.port = port or free_port(host)
        self._controller = Controller(EmlFolderHandler(folder), hostname=host, port=self.port)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
