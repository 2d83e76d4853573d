"""HTTP triggers through the local host: routes under the prefix, route parameters, request and
response translation, 404 for unbound methods, 500 without details."""

from __future__ import annotations

import json
import logging

import pytest

from tests.devhost.conftest import fast_host_json
from tests.devhost.http_client import call

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def test_route_parameter_query_headers_and_body_reach_the_function(sample_host):
    host = sample_host()

    url = host.url("items/42?colour=red")  # with the function's key as `code`, which reaches the function too
    answer = call("POST", url, body=b'{"a": 1}', headers={"X-Test": "present"})

    assert answer.status == 201
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-echo"] == "yes"
    seen = json.loads(answer.body)
    assert seen["method"] == "POST"
    assert seen["item_id"] == "42"
    assert seen["params"] == {"colour": "red", "code": url.split("code=")[1]}
    assert seen["x_test"] == "present"
    assert seen["body"] == '{"a": 1}'
    assert seen["url"] == url


def test_chunked_request_body_is_read(sample_host):
    host = sample_host()
    chunked = b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"

    answer = call("POST", host.url("items/7"), body=chunked, headers={"Transfer-Encoding": "chunked"})

    assert json.loads(answer.body)["body"] == "abcdefg"


def test_routes_live_under_the_route_prefix_from_host_json(sample_host):
    host_json = fast_host_json()
    host_json["extensions"]["http"]["routePrefix"] = "v1"
    host = sample_host(host_json=host_json)

    assert call("GET", f"{host.base_url}/v1/hello").status == 200
    assert call("GET", f"{host.base_url}/api/hello").status == 404


def test_string_return_value_is_a_plain_text_200(sample_host):
    answer = call("GET", sample_host().url("hello"))

    assert (answer.status, answer.body) == (200, b"hello")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_unknown_route_and_unbound_method_are_404(sample_host):
    host = sample_host()

    assert call("GET", host.url("nothing-here")).status == 404
    assert call("DELETE", host.url("items/1")).status == 404  # the host answers 404, not 405


def test_unhandled_exception_is_500_with_no_details_in_the_body(sample_host, caplog):
    host = sample_host()

    with caplog.at_level(logging.INFO, logger="devhost"):
        answer = call("GET", host.url("boom"))

    assert answer.status == 500
    assert answer.body == b""
    assert "secret detail" in caplog.text  # on the console for the developer, not in the answer
    assert "Executed 'Functions.boom' (Failed" in caplog.text


def test_invocation_log_line_names_function_and_outcome_but_not_the_body(sample_host, caplog):
    host = sample_host()

    with caplog.at_level(logging.INFO, logger="devhost"):
        call("POST", host.url("items/9"), body=b"customer@example.com")

    lines = [r.getMessage() for r in caplog.records if "Functions.echo_item" in r.getMessage()]
    assert len(lines) == 1
    assert "Succeeded" in lines[0] and "POST /api/items/9 -> 201" in lines[0]
    assert "customer@example.com" not in caplog.text


def test_disabled_function_is_not_served(sample_host):
    host = sample_host(**{"AzureWebJobs.hello.Disabled": "true"})

    assert call("GET", host.url("hello")).status == 404
    assert call("GET", host.url("items/1")).status == 201
