"""Function keys as the Functions host checks them (devhost/keys.py names the host source of each rule), and
the host's `code` parameter reaching the app, on the real app: `?code=<key>` on the management API answers
200 in the Azure-like mode, without a key 401 with an empty body, and another function's key does not open it;
without key checks (`make run`) `?code=anything` reaches the app and is not a 400."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.http_server import function_params, route_values
from devhost.keys import ADMIN, ANONYMOUS, FUNCTION, HostKeys, presented_key, with_key
from tests.devhost.http_client import call

pytestmark = [pytest.mark.timeout(120)]


def own_tables() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"LEADS_TABLE": f"keys{suffix}", "LEADS_QUARANTINE_TABLE": f"keysq{suffix}", "LEADS_QUEUE": f"keys-{suffix}",
            "LEADS_DESTINATIONS": "", "WEBSITE_INSTANCE_ID": "", "WEBSITE_AUTH_ENABLED": ""}


@pytest.mark.azurite
def test_which_key_opens_which_route(local_host_factory: Any) -> None:
    host = local_host_factory(own_tables())
    keys: HostKeys = host.keys
    listing = host.bare_url("manage-key/leads")
    quarantine = host.bare_url("manage-key/quarantine?limit=1")

    assert call("GET", with_key(listing, keys.functions["manage_key"])).status == 200  # its own key
    assert call("GET", with_key(quarantine, keys.functions["manage_key"])).status == 200
    assert call("GET", with_key(listing, keys.host)).status == 200  # a host key opens every FUNCTION route
    assert call("GET", with_key(listing, keys.master)).status == 200  # the master key opens every route
    assert call("GET", listing, headers={"x-functions-key": keys.functions["manage_key"]}).status == 200
    assert call("GET", f"{listing}?CODE={keys.functions['manage_key']}").status == 200  # the query ignores case

    for refused in (listing, with_key(listing, keys.functions["ingest_lead"]), with_key(listing, "guess"),
                    with_key(listing, keys.master[:-1])):
        answer = call("GET", refused)
        assert (answer.status, answer.body) == (401, b""), refused  # UnauthorizedResult: an empty body
    # The header wins over the query (AuthenticationLevelHandler): a wrong header is not saved by a right code.
    assert call("GET", with_key(listing, keys.master), headers={"x-functions-key": "wrong"}).status == 401

    assert call("POST", host.bare_url("leads"), b"{}").status == 401  # ingest_lead is FUNCTION level
    assert call("GET", host.bare_url("health")).status == 200  # ANONYMOUS: no key needed
    assert call("GET", with_key(host.bare_url("health"), "anything")).status == 200  # a wrong key is no key


@pytest.mark.azurite
def test_without_key_checks_code_reaches_the_app_and_is_not_a_400(local_host_factory: Any) -> None:
    host = local_host_factory(own_tables(), check_keys=False)
    for route in ("manage-key/leads", "manage-key/quarantine", "manage/leads", "manage/quarantine"):
        answer = call("GET", with_key(host.bare_url(route), "anything"))
        assert answer.status == 200, (route, answer.body)
    bad = call("GET", host.bare_url("manage-key/leads?nosuch=1&code=x"))
    assert bad.status == 400 and json.loads(bad.body)["message"].startswith("Unknown parameter 'nosuch'")
    assert call("GET", host.bare_url("manage-key/leads")).status == 200  # Core Tools: no key needed


def test_presented_key_header_first_then_code() -> None:
    assert presented_key({"x-functions-key": "h"}, "code=q") == "h"
    assert presented_key({}, "a=1&Code=q&code=r") == "q"  # the first value
    assert presented_key({}, "a=1") == ""


def test_levels() -> None:
    keys = HostKeys("m", "h", {"one": "k1", "two": "k2"})
    assert [keys.level_of(k, "one") for k in ("m", "h", "k1", "k2", "", "x")] == [
        ADMIN, FUNCTION, FUNCTION, ANONYMOUS, ANONYMOUS, ANONYMOUS]
    assert keys.allows(ADMIN, {"x-functions-key": "m"}, "", None)
    assert not keys.allows(ADMIN, {"x-functions-key": "h"}, "", None)
    assert keys.allows(ANONYMOUS, {}, "", "one")


def test_keys_are_fixed_by_settings_and_random_otherwise() -> None:
    fixed = HostKeys.from_settings({"DEVHOST_MASTER_KEY": "mm", "DEVHOST_FUNCTION_KEY_INGEST_LEAD": "ii"},
                                   ["ingest_lead", "status"])
    assert (fixed.master, fixed.functions["ingest_lead"]) == ("mm", "ii")
    again = HostKeys.from_settings({}, ["status"])
    assert len({fixed.host, again.host, again.master, again.functions["status"]}) == 4
    assert HostKeys.from_settings(fixed.as_settings(), ["ingest_lead", "status"]) == fixed


def test_params_as_the_host_passes_them() -> None:
    assert function_params("a=1&a=2&empty=&b=x%20y&A=3") == {"a": "1,2,3", "b": "x y"}
    assert function_params("only=&also") == {}
    assert function_params("code=k&limit=5") == {"code": "k", "limit": "5"}  # code is passed on, as in Azure
    assert route_values({"path": "a%20b", "id": "42"}) == {"path": "a b", "id": "42"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "A", "code"]), st.text("xyz,=& %", max_size=4)), max_size=6))
def test_params_never_hold_an_empty_value_and_keep_every_non_empty_one(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import quote

    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)
    params = function_params(query)
    assert all(params.values())
    for name, value in pairs:
        if value:
            key = next(k for k in params if k.lower() == name.lower())
            assert value in params[key].split(",") or "," in value


@settings(max_examples=300, deadline=None)
@given(presented=st.sampled_from(["master", "host", "own", "other", "", "junk"]),
       where=st.sampled_from(["header", "code", "CODE"]), required=st.sampled_from([ANONYMOUS, FUNCTION, ADMIN]))
def test_the_level_rules_hold_for_every_key_route_and_place(presented: str, where: str, required: str) -> None:
    keys = HostKeys("M" * 20, "H" * 20, {"own": "O" * 20, "other": "X" * 20})
    values = {"master": keys.master, "host": keys.host, "own": "O" * 20, "other": "X" * 20, "": "", "junk": "J"}
    value = values[presented]
    headers = {"x-functions-key": value} if where == "header" else {}
    query = f"{where}={value}" if where != "header" else ""
    expected = (required == ANONYMOUS or presented == "master"
                or (required == FUNCTION and presented in ("host", "own")))
    assert keys.allows(required, headers, query, "own") is expected
