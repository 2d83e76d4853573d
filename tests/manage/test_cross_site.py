"""No cross-site actions, through the local host (`make run`'s host) on Azurite: a text/plain or foreign-Origin
POST to a management route is refused and changes nothing; `Host: evil.example` (DNS rebinding) gets no data;
malformed or deeply nested JSON gets a 400 with a sentence."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.manage.cross_site import CrossSiteError, check_same_origin_json, same_origin
from tests.manage.test_auth import own_tables

pytestmark = [pytest.mark.azurite]
SAMPLE = (Path(__file__).resolve().parents[2] / "samples" / "camelcase-wire.json").read_bytes()
EMAIL = json.loads(SAMPLE)["userDetails"]["email"]


def send(base: str, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Raw http.client, so that the Host header is exactly the one given."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": parts.netloc, **headers, "Content-Length": str(len(body))}
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def host(local_host_factory: Callable[..., Any]) -> Any:
    return local_host_factory(own_tables())


def ingest_path(host: Any) -> str:
    """/api/leads with its function key (the local host checks keys in tests, as Azure does)."""
    parts = urlsplit(host.url("leads"))
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def lead_count(host: Any) -> int:
    status, _, answer = send(host.base_url, "GET", "/api/manage/leads?limit=100")
    assert status == 200
    return len(json.loads(answer)["leads"])


def test_cross_site_and_non_json_actions_are_refused_and_change_nothing(host: Any) -> None:
    base = host.base_url
    assert send(base, "POST", ingest_path(host), SAMPLE, **{"Content-Type": "application/json"})[0] == 202
    assert lead_count(host) == 1
    forget = json.dumps({"email": EMAIL}).encode()
    attempts = [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
        {"Content-Type": "application/json", "Origin": "null"},
        {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{urlsplit(base).port + 1}"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
        {"Content-Type": "text/plain", "Origin": base, "Sec-Fetch-Site": "same-origin"},
    ]
    for headers in attempts:
        status, answer_headers, answer = send(base, "POST", "/api/manage/forget", forget, **headers)
        assert status in (403, 415), headers
        assert "Nothing was changed" in json.loads(answer)["message"]
        assert answer_headers["X-Content-Type-Options"] == "nosniff"
    assert lead_count(host) == 1
    status, _, answer = send(base, "POST", "/api/manage/forget", forget,
                             **{"Content-Type": "application/json; charset=utf-8", "Origin": base,
                                "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and json.loads(answer)["leads"] == 1
    assert lead_count(host) == 0


def test_dns_rebinding_host_gets_no_data(host: Any) -> None:
    assert send(host.base_url, "POST", ingest_path(host), SAMPLE, **{"Content-Type": "application/json"})[0] == 202
    for path in ("/api/manage/leads", "/api/console", "/api/manage/status", "/api/openapi.json", "/api/leads"):
        status, _, answer = send(host.base_url, "GET", path, Host="evil.example")
        assert status == 421, path
        assert EMAIL.encode() not in answer and b"leads" not in answer.split(b"only")[0]
        assert "127.0.0.1" in json.loads(answer)["message"]
    port = urlsplit(host.base_url).port
    status, _, answer = send(host.base_url, "GET", "/api/manage/leads", Host=f"localhost:{port}")
    assert status == 200 and EMAIL in answer.decode()


@pytest.mark.parametrize("payload", [b"[" * 100_000, b"[" * 15_000,
                                     b'{"email": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
                                     b"{not json", b"\xff\xfe", b'{"email": "a@b.example"'])
def test_malformed_or_deeply_nested_json_is_a_400_with_a_sentence(host: Any, payload: bytes) -> None:
    for path in ("/api/manage/forget", "/api/manage/replay"):
        status, _, answer = send(host.base_url, "POST", path, payload, **{"Content-Type": "application/json"})
        document = json.loads(answer)
        assert status == 400, (path, payload[:20])
        assert document["error"] == "bad_request" and document["message"].endswith(".")


ORIGINS = st.builds(lambda scheme, name, port: f"{scheme}://{name}" + (f":{port}" if port else ""),
                    st.sampled_from(["http", "https", "ftp", "javascript"]),
                    st.sampled_from(["app.example", "evil.example", "app.example.evil", "127.0.0.1", "localhost"]),
                    st.one_of(st.none(), st.integers(1, 65535)))


@settings(max_examples=300, derandomize=True)
@given(origin=ORIGINS, host_name=st.sampled_from(["app.example", "127.0.0.1", "localhost"]),
       port=st.one_of(st.none(), st.integers(1, 65535)))
def test_an_origin_is_taken_only_when_it_names_this_host(origin: str, host_name: str, port: int | None) -> None:
    host = host_name + (f":{port}" if port else "")
    headers = {"Content-Type": "application/json", "Origin": origin, "Host": host}
    taken = True
    try:
        check_same_origin_json(headers)
    except CrossSiteError:
        taken = False
    scheme, rest = origin.split("://", 1)
    default = {"http": "80", "https": "443"}.get(scheme)

    def strip(value: str) -> str:
        return value[: -len(default) - 1] if default and value.endswith(":" + default) else value

    assert taken == (default is not None and strip(rest) == strip(host)) == same_origin(origin, host)
