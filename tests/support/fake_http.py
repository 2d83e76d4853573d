"""A real HTTP server on a loopback socket that answers canned vendor responses and records requests.

Tests give it routes (method, path) -> a handler returning `Reply`. Each canned answer in a test names
the vendor document it copies. The server records what the app sent, so tests assert both sides.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    target: str = ""  # the path and query exactly as sent (what a request signature covers)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"))


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode("utf-8"), headers
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode("utf-8"), headers


# Credentials never travel in a URL (request lines are logged by proxies and by urllib3 at DEBUG): every fake
# refuses a request carrying one in its query string, as RFC 6749 §2.3.1 says a client secret belongs in the
# body or the Authorization header, and records it so a test can show which request did.
CREDENTIAL_QUERY_NAMES = frozenset({"client_secret", "client_assertion", "password", "access_token",
                                    "refresh_token"})

Handler = Callable[[Recorded], Reply]
PatternHandler = Callable[[Recorded, "re.Match[str]"], Reply]


class FakeServer:
    """`with FakeServer() as server: server.on("POST", "/token", handler_or_reply)`."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.patterns: list[tuple[str, re.Pattern[str], PatternHandler]] = []
        self.requests: list[Recorded] = []
        self.credentials_in_query: list[Recorded] = []
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body,
                                    self.path)
                with fake._lock:
                    fake.requests.append(recorded)
                reply = fake.answer(recorded)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                payload, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and every test stops a server.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def on(self, method: str, path: str, answer: Reply | Handler) -> None:
        if isinstance(answer, Reply):
            reply = answer
            self.routes[(method, path)] = lambda _request: reply
        else:
            self.routes[(method, path)] = answer

    def on_pattern(self, method: str, pattern: str, answer: PatternHandler) -> None:
        """A route whose path is a regular expression (paths that carry record ids); exact routes win."""
        self.patterns.append((method, re.compile(pattern), answer))

    def answer(self, request: Recorded) -> Reply:
        if CREDENTIAL_QUERY_NAMES & set(request.query):
            self.credentials_in_query.append(request)
            return Reply(400, {"error": "invalid_request", "error_description": "credentials in the query string"})
        handler = self.routes.get((request.method, request.path))
        if handler:
            return handler(request)
        for method, pattern, pattern_handler in self.patterns:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                return pattern_handler(request, match)
        return Reply(404, {"error": f"no route {request.path}"})

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
