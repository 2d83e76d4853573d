"""`send-test-lead URL`: POST a lead shaped like the one Partner Center's Validate button sends (every value
`MSFT_TEST_<number>`, docs/marketplace-leads.md; samples/faq-test-lead.json; built by leads/manage/test_lead.py)
to any endpoint, a deployed one with `?code=` included, and say what it answered, how long it took, and what
a failure means."""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from leads.cli.common import CHECK_FAILED, OK, UsageError
from leads.cli.output import print_json, print_pairs


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    send = commands.add_parser("send-test-lead", parents=[common],
                               help="POST a Partner Center-shaped test lead to URL and report the answer")
    send.add_argument("url", help="the lead endpoint, e.g. http://127.0.0.1:7071/api/leads or "
                                  "https://APP.azurewebsites.net/api/leads?code=KEY")
    send.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="give up after (30)")
    send.set_defaults(handler=run)


def without_key(url: str) -> str:
    """The URL to print: a function key (`code=`) is a secret."""
    parts = urlsplit(url)
    query = urlencode([(k, "[redacted]" if k.lower() == "code" else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit(parts._replace(query=query))


def run(args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{without_key(args.url)!r} is not an http:// or https:// URL.")
    report = send(args.url, args.timeout)
    if args.json:
        print_json(report)
    else:
        print_pairs([("endpoint", report["url"]), ("status", report["status"]),
                     ("time", f"{report['elapsed_ms']} ms"), ("answer", report["answer"]),
                     ("meaning", report["sentence"])])
    return OK if report["ok"] else CHECK_FAILED


def send(url: str, timeout: float) -> dict[str, Any]:
    """{"url", "ok", "status": int|None, "answer": JSON or text|None, "elapsed_ms", "sentence"}."""
    import requests

    from leads.manage.test_lead import test_lead_body

    shown, host = without_key(url), urlsplit(url).netloc
    started = time.perf_counter()
    status: int | None = None
    answer: Any = None
    try:
        response = requests.post(url, data=test_lead_body(), headers={"Content-Type": "application/json"},
                                 timeout=timeout)
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = response.text[:2000]
        sentence = meaning(status, answer, url)
    except requests.exceptions.SSLError as error:
        sentence = tls_sentence(host, str(error))
    except requests.exceptions.ConnectTimeout:
        sentence = f"{host} did not accept a connection within {timeout:g} s: check the host name and any firewall."
    except requests.exceptions.Timeout:
        sentence = f"{host} accepted the connection but did not answer within {timeout:g} s: see the app's logs."
    except requests.exceptions.ConnectionError as error:
        sentence = connection_sentence(host, error)
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    return {"url": shown, "ok": ok, "status": status, "answer": answer, "elapsed_ms": elapsed_ms,
            "sentence": sentence}


def tls_sentence(host: str, text: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (f"The TLS handshake with {host} failed: its certificate is not trusted or not for this host name "
                "(check the host in the URL; for a private CA set REQUESTS_CA_BUNDLE).")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text.lower():
        return f"The TLS handshake with {host} failed: it does not speak TLS on this port; use http:// instead."
    return f"The TLS handshake with {host} failed: check the URL's host and scheme (https:// or http://)."


def connection_sentence(host: str, error: Exception) -> str:
    text = str(error)
    if "refused" in text.lower():
        return (f"Nothing is listening at {host} (connection refused): start the app (`make run`) or check the "
                "host and port in the URL.")
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower() \
            or "getaddrinfo" in text.lower() or "name resolution" in text.lower():
        return f"The host name in {host} does not resolve: check the app's name in the URL."
    return f"Could not connect to {host} ({type(error).__name__}): check the URL and the network."


def meaning(status: int, answer: Any, url: str) -> str:
    has_key = any(k.lower() == "code" for k, _ in parse_qsl(urlsplit(url).query))
    message = answer.get("message") if isinstance(answer, dict) else None
    if 200 <= status < 300:
        lead_id = answer.get("id") if isinstance(answer, dict) else None
        test = answer.get("test") if isinstance(answer, dict) else None
        return (f"Accepted: stored as lead {lead_id}" + (" (recognised as a test lead)" if test else "")
                + ". Partner Center's Validate would pass." if lead_id else
                "Accepted (the endpoint answered 2xx). Partner Center's Validate would pass.")
    if status in {401, 403}:
        return ("Refused: the function key is missing or wrong. Add ?code=<the function key of the leads "
                "function> to the URL (Partner Center sends the URL as you give it)." if not has_key else
                "Refused: the function key in ?code= is not this function's (or was rotated): copy it again from "
                "the portal (Functions > leads > Function Keys).")
    if status == 404:
        return ("Not found: no function answers at this route: check the path (/api/leads) and that the app is "
                "deployed and running.")
    if 400 <= status < 500:
        return f"The endpoint refused the lead (HTTP {status})" + (f": {message}" if message else ".")
    return (f"The endpoint failed (HTTP {status})" + (f": {message}" if message else "")
            + ". Partner Center would retry; see the app's logs or run `python -m leads doctor` where it runs.")
