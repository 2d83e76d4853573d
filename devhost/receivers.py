"""Local stand-ins for the notification destinations, to try them with `make run`: a webhook receiver that
verifies each request with the `standardwebhooks` library (as a real receiver would), a Teams workflow and a
Slack incoming webhook. Each prints one line per request (the lead id, never the lead's data).

    .venv/bin/python -m devhost.receivers --secret whsec_... [--secret whsec_...]   # prints the settings to use
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from standardwebhooks import Webhook, WebhookVerificationError


class _Receivers(BaseHTTPRequestHandler):
    secrets: ClassVar[list[str]] = []
    counts: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - one line of our own per request
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        route = self.path.split("?")[0].strip("/")
        with self.lock:
            self.counts[route] = self.counts.get(route, 0) + 1
            count = self.counts[route]
        if route == "webhook":
            verified = [str(n) for n, secret in enumerate(self.secrets, 1) if _verifies(secret, body, self.headers)]
            print(f"webhook #{count}: webhook-id {self.headers.get('webhook-id')}, signature verified with secret "
                  f"{' and '.join(verified) or 'none'}", flush=True)
            self._answer(204 if verified else 401, b"")
        elif route == "teams":
            message = json.loads(body)
            facts = {fact["title"]: fact["value"] for block in message["attachments"][0]["content"]["body"]
                     if block["type"] == "FactSet" for fact in block["facts"]}
            print(f"teams #{count}: Adaptive Card for lead {facts.get('Lead id')}", flush=True)
            self._answer(202, b"", {"x-ms-workflow-run-id": f"local-run-{count}"})
        elif route == "slack":
            message = json.loads(body)
            print(f"slack #{count}: {len(message.get('blocks', []))} blocks, text {message.get('text')!r}", flush=True)
            self._answer(200, b"ok")
        else:
            self._answer(404, b"no_service")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _verifies(secret: str, body: bytes, headers: Any) -> bool:
    try:
        Webhook(secret).verify(body, dict(headers.items()))
    except WebhookVerificationError:
        return False
    return True


def receivers(port: int, secrets: list[str]) -> ThreadingHTTPServer:
    """The three stand-ins on one loopback port (0: any free port), not yet serving."""
    _Receivers.secrets = list(secrets)
    _Receivers.counts = {}
    return ThreadingHTTPServer(("127.0.0.1", port), _Receivers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7080)
    parser.add_argument("--secret", action="append", required=True,
                        help="a whsec_ secret the webhook receiver holds; repeat to act as several receivers")
    args = parser.parse_args(argv)
    server = receivers(args.port, args.secret)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print("Set for the app (e.g. in the environment of `make run`):\n"
          "  LEADS_DESTINATIONS=email,webhook,teams,slack\n"
          f"  LEADS_WEBHOOK_URL={base}/webhook\n  LEADS_TEAMS_WEBHOOK_URL={base}/teams\n"
          f"  LEADS_SLACK_WEBHOOK_URL={base}/slack\n  LEADS_WEBHOOK_SECRET=<one or more of the secrets above>",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
