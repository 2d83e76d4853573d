"""Flex mode's front end: one address for the app, each request passed to one of the HTTP instances in turn.

In Azure the front end spreads HTTP requests over the instances the app has at that moment (Flex
Consumption scales HTTP functions out and in as one group: learn.microsoft.com azure-functions/
flex-consumption-plan "Per-function scaling"), so consecutive requests, a caller's retry included, may land on
different instances, and an instance removed by scale-in gets no more requests. Here: round robin over the
live instances; an instance that refuses the connection (killed, restarting) is skipped for that request.
An answer not started within 230 s is cut with a 502 (functions-scale#timeout, "230 seconds is the maximum
amount of time that an HTTP triggered function can take to respond"; the status callers see is not documented).
"""

from __future__ import annotations

import http.client
import itertools
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("devhost.frontend")
FRONT_END_SECONDS = 230.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    instances: Callable[[], list[int]]  # the ports of the live HTTP instances, in a stable order
    turn: itertools.count[int]
    seconds: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silenced: the instances log each invocation."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _relay(self) -> None:
        body = self._body()
        ports = self.server.instances()
        start = next(self.server.turn)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        for attempt in range(len(ports)):
            port = ports[(start + attempt) % len(ports)]
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=self.server.seconds)
            try:
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                except OSError:
                    continue  # not listening (scaled in, restarting): the next instance
                try:
                    answer = connection.getresponse()
                    payload = answer.read()
                except TimeoutError:
                    self._answer(502, [], b"")
                    return
                except (OSError, http.client.HTTPException):
                    self._answer(502, [], b"")  # the instance went away while it held the request
                    return
                self._answer(answer.status, [(k, v) for k, v in answer.getheaders()
                                             if k.lower() not in _HOP_BY_HOP], payload)
                return
            finally:
                connection.close()
        self._answer(503, [], b"")  # no instance: the app is starting or scaled to zero

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = _relay


class FrontEnd:
    def __init__(self, instances: Callable[[], list[int]], bind: str = "127.0.0.1", port: int = 0,
                 seconds: float = FRONT_END_SECONDS) -> None:
        self._server = _Server((bind, port), _Handler)
        self._server.instances = instances
        self._server.turn = itertools.count()
        self._server.seconds = seconds
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="devhost-frontend", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
