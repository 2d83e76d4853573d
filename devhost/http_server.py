"""The HTTP front end: a threading server that turns requests into `func.HttpRequest` and back.

Copied host behaviour: routes under `/{routePrefix}` (routes.py); an unhandled exception is a 500 with an
empty body (the stack trace goes to the console only); the request body is limited to 100 MB (413), the
Functions HTTP limit; `GET /` answers like the host's home page; `POST /admin/functions/<name>` runs a
timer function now and answers 202, like the host's admin API ("Manually run a non HTTP-triggered
function", learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http); it runs on the
instance that received it, as in Azure. Keys (authLevel FUNCTION/ADMIN) are checked only in the Azure-like
mode (`keys` set: devhost/keys.py, with the host source of each rule); otherwise not, as with Core Tools
(`func start`), which does not enforce them locally. Query parameters and route values reach the function as
the host passes them (`function_params`, `route_values`), `code` included, in every mode.

Not copied: a request whose Host is not a loopback name (127.0.0.1, localhost, [::1], any port) gets 421 with a
sentence and reaches no function. A page on another site can make a browser send requests here under its own
domain name once its DNS answers 127.0.0.1 (DNS rebinding); the Host header still names that domain.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost.invoke import HTTP_RESPONSE_LIMIT_SECONDS, ResponseCut, invoke, trigger_scope
from devhost.keys import ADMIN, HostKeys, auth_level
from devhost.routes import Route, match_route
from leads.core.hosting import is_loopback_host

log = logging.getLogger("devhost.http")
MAX_BODY_BYTES = 100 * 1024 * 1024
_ADMIN_RUN = re.compile(r"^/admin/functions/([^/]+)/?$", re.IGNORECASE)
AdminTarget = Callable[[], None]  # runs the function now, on this instance
_HOME_PAGE = b"<html><body><h1>Your Functions app is up and running (devhost).</h1></body></html>"
MISDIRECTED = (b'{"error": "misdirected_request", "message": "This local host answers only requests addressed to '
               b'127.0.0.1, localhost or [::1] (with any port); use http://127.0.0.1:7071/ (a page on another site '
               b'cannot reach it through its own domain name)."}')


def encode_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, with Content-Type chosen like the worker's HttpResponseConverter.encode
    (azure-functions-python-library azure/functions/http.py): text/* gets `; charset=...`."""
    if isinstance(result, str):
        return 200, [("Content-Type", "text/plain; charset=utf-8")], result.encode("utf-8")
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse or str, not {type(result).__name__}")
    headers = list(result.headers.items())
    if not any(name.lower() == "content-type" for name, _ in headers):
        mimetype = result.mimetype
        headers.append(("Content-Type", f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/")
                        else mimetype))
    return result.status_code, headers, result.get_body() or b""


def function_params(query: str) -> dict[str, str]:
    """req.params as the Python worker receives them. The host copies `request.Query` into RpcHttp.query,
    skipping empty values, each value being StringValues.ToString(): repeated values joined with ","
    (azure-functions-host src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs,
    ToRpcHttp; the Python worker does not ask for UseNullableValueDictionaryForHttp, so the plain `query` map is
    used). The worker turns that map into req.params unchanged (azure-functions-python-worker
    azure_functions_worker/bindings/datumdef.py, Datum.from_typed_data). Names keep their first spelling
    (ASP.NET's query collection ignores case)."""
    joined: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = spelled.setdefault(name.lower(), name)
        joined.setdefault(key, []).append(value)
    return {name: ",".join(values) for name, values in joined.items() if any(values)}


def route_values(found: dict[str, str]) -> dict[str, str]:
    """Route values decoded, as ASP.NET Core routing gives them (the request path is decoded before matching,
    except an encoded "/"), copied by the host into RpcHttp.params (GrpcMessageConversionExtensions,
    PopulateHttpRouteDataAsParams)."""
    return {name: unquote(value) for name, value in found.items()}


def admin_body_is_json(body: bytes) -> bool:
    """FunctionsController.Invoke takes `[FromBody] FunctionInvocation`: no JSON object -> 400 Bad Request."""
    try:
        return isinstance(json.loads(body or b"null"), dict)
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silenced: invoke() writes the one line per request (without the body)."""

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(413, [], b"")
            return
        if not is_loopback_host(self.headers.get("Host")):
            log.info("%s %s -> 421 (Host is not a loopback name)", self.command, parts.path)
            self._send(421, [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")],
                       MISDIRECTED)
            return
        admin = _ADMIN_RUN.match(parts.path)
        if admin and self.command == "POST":
            self._run_manually(admin.group(1), body)
            return
        found = match_route(self.server.routes, self.command, parts.path)
        if found is not None and not self._key_allows(found[0]):
            log.info("%s %s -> 401 (no valid function key)", self.command, parts.path)
            self._send(401, [], b"")
            return
        if found is None:
            if parts.path == "/" and self.command in ("GET", "HEAD"):
                self._send(200, [("Content-Type", "text/html; charset=utf-8")], _HOME_PAGE)
            else:
                log.info("%s %s -> 404 (no function)", self.command, parts.path)
                self._send(404, [], b"")
            return
        route, route_params = found
        with trigger_scope():
            self._call(route, route_params, body)

    def _key_allows(self, route: Route) -> bool:
        """devhost/keys.py: the key this request presents opens the route's authLevel (always, without keys)."""
        keys: HostKeys | None = self.server.keys
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        return keys is None or keys.allows(auth_level(route.function.trigger), headers, parts.query,
                                           route.function.name)

    def _run_manually(self, name: str, body: bytes) -> None:
        """FunctionsController.Invoke: the master key (Azure-like mode), a JSON body, then the function here."""
        keys: HostKeys | None = self.server.keys
        headers = {key.lower(): value for key, value in self.headers.items()}
        if keys is not None and not keys.allows(ADMIN, headers, urlsplit(self.path).query, None):
            self._send(401, [], b"")
            return
        if not admin_body_is_json(body):
            self._send(400, [], b"")
            return
        target = {k.lower(): v for k, v in self.server.admin.items()}.get(name.lower())
        if target is None:
            self._send(404, [], b"")
        else:
            target()
            self._send(202, [], b"")

    def _call(self, route: Route, route_params: dict[str, str], body: bytes) -> None:
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = func.HttpRequest(
            method=self.command,
            url=f"http://{self.headers.get('Host') or self.server.authority}{self.path}",
            headers=headers,
            params=function_params(parts.query),
            route_params=route_values(route_params),
            body=body,
        )
        outcome: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}

        def describe(succeeded: bool, result: Any) -> str:
            # A cut answer: the front end's 502 (the status Azure's front end gives is not documented; 502
            # Bad Gateway is what callers report), the function still running.
            response: tuple[int, list[tuple[str, str]], bytes] = (502 if isinstance(result, ResponseCut) else 500,
                                                                  [], b"")
            if succeeded:
                try:
                    response = encode_response(result)
                except TypeError as error:
                    log.error("Function 'Functions.%s': %s", route.function.name, error)
            outcome["response"] = response
            return f"{self.command} {parts.path} -> {response[0]}"

        invoke(route.function, request, describe, respond_within=self.server.respond_within)
        self._send(*outcome["response"])

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: list[Route]
    authority: str
    admin: dict[str, AdminTarget]
    keys: HostKeys | None
    respond_within: float


class HttpFrontend:
    """Serves the routes on `bind:port` (port 0: a free port, read back from `.port`)."""

    def __init__(self, routes: list[Route], bind: str = "127.0.0.1", port: int = 7071,
                 keys: HostKeys | None = None) -> None:
        self._server = _Server((bind, port), _Handler)
        self._server.routes = routes
        self._server.admin = {}
        self._server.keys = keys
        self._server.respond_within = HTTP_RESPONSE_LIMIT_SECONDS  # tests shorten it
        self.admin = self._server.admin  # function name -> AdminTarget, filled by the host
        self.port: int = self._server.server_address[1]
        self._server.authority = f"{bind}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="devhost-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
